#!/usr/bin/python3
"""How the JSON libraries tern could use compare (the choice is recorded in
docs/qmp.md): for each of json-glib, jansson and json-c whose -dev package is
installed, a minimal program (GLib main context, parse one QMP command, write
one reply) is built and measured against GLib alone, and each library's
handling of the numbers and strings QMP cares about is printed.
  rss     VmRSS at the end of the program, KiB
  spawn   median exec -> exit of the program, microseconds (posix_spawn)
Usage: bench/json-libs.py [--runs N]   (needs cc and pkg-config)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

COMMON = r"""
#include <glib.h>
#include <stdio.h>
#include <string.h>
static long rss_kib(void)
{
    char *s = NULL; long v = -1;
    if (g_file_get_contents("/proc/self/status", &s, NULL, NULL)) {
        char *p = strstr(s, "VmRSS:");
        if (p) v = strtol(p + 6, NULL, 10);
    }
    g_free(s);
    return v;
}
#define CMD "{\"execute\":\"query-status\",\"arguments\":{\"a\":1}}"
"""

PROGRAMS = {
    "glib only": ("glib-2.0", r"""
int main(int argc, char **argv) {
    (void)g_main_context_default();
    if (argc > 1) printf("%ld\n", rss_kib());
    return 0;
}"""),
    "json-glib": ("glib-2.0 json-glib-1.0", r"""
#include <json-glib/json-glib.h>
int main(int argc, char **argv) {
    (void)g_main_context_default();
    JsonParser *p = json_parser_new();
    json_parser_load_from_data(p, CMD, -1, NULL);
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b); json_builder_set_member_name(b, "return");
    json_builder_begin_object(b); json_builder_end_object(b); json_builder_end_object(b);
    JsonNode *root = json_builder_get_root(b);
    char *t = json_to_string(root, FALSE);
    if (argc > 1) printf("%ld\n", rss_kib());
    g_free(t); json_node_unref(root); g_object_unref(b); g_object_unref(p);
    return 0;
}"""),
    "jansson": ("glib-2.0 jansson", r"""
#include <jansson.h>
int main(int argc, char **argv) {
    (void)g_main_context_default();
    json_error_t e;
    json_t *j = json_loads(CMD, 0, &e);
    json_t *r = json_pack("{s:{}}", "return");
    char *t = json_dumps(r, JSON_COMPACT);
    if (argc > 1) printf("%ld\n", rss_kib());
    free(t); json_decref(j); json_decref(r);
    return 0;
}"""),
    "json-c": ("glib-2.0 json-c", r"""
#include <json-c/json.h>
int main(int argc, char **argv) {
    (void)g_main_context_default();
    json_object *j = json_tokener_parse(CMD);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "return", json_object_new_object());
    const char *t = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
    if (argc > 1) printf("%ld\n", rss_kib());
    (void)t; json_object_put(j); json_object_put(r);
    return 0;
}"""),
}

# What each library does with inputs at QMP's edges: parsed and written back.
PROBES = ["[9223372036854775808]", "[18446744073709551615]",
          "[18446744073709551616]", "[-0.0]", "[NaN]", "[1e999]", "[1.]",
          '["a\\u0000b"]', '["\\u00e9"]', '{"a":1,"a":2}']

PROBE_PROGRAMS = {
    "jansson": ("jansson", r"""
#include <jansson.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    json_error_t e;
    json_t *j = json_loadb(argv[1], strlen(argv[1]), JSON_ALLOW_NUL, &e);
    if (!j) { printf("error: %s\n", e.text); return 0; }
    char *t = json_dumps(j, JSON_COMPACT);
    printf("%s\n", t);
    return 0;
}"""),
    "json-c": ("json-c", r"""
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *j = json_tokener_parse_ex(tok, argv[1], strlen(argv[1]));
    if (!j) { printf("error: %s\n", json_tokener_error_desc(json_tokener_get_error(tok))); return 0; }
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    return 0;
}"""),
}


def build(d, name, pkgs, src, common=True):
    if subprocess.run(["pkg-config", "--exists", *pkgs.split()]).returncode:
        return None
    c = d / (name.replace(" ", "_") + ".c")
    c.write_text((COMMON if common else "") + src)
    exe = d / c.stem
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", *pkgs.split()],
                           check=True, capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", str(exe), str(c), *flags], check=True)
    return exe


def spawn_us(exe, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(exe)], check=True)
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="json-libs-"))
    try:
        print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each")
        print(f"{'':12} {'rss KiB':>8} {'spawn us':>9}")
        for name, (pkgs, src) in PROGRAMS.items():
            exe = build(d, name, pkgs, src)
            if not exe:
                print(f"{name:12} (not installed)")
                continue
            rss = subprocess.run([str(exe), "x"], check=True, capture_output=True,
                                 text=True).stdout.strip()
            print(f"{name:12} {rss:>8} {spawn_us(exe, args.runs):9.0f}")
        for name, (pkgs, src) in PROBE_PROGRAMS.items():
            exe = build(d, "probe-" + name, pkgs, src, common=False)
            if not exe:
                continue
            print(f"\n{name}:")
            for p in PROBES:
                out = subprocess.run([str(exe), p], capture_output=True,
                                     text=True).stdout.strip()
                print(f"  {p:28} -> {out}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
