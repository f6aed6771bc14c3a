/*
 * Image format probing, as QEMU 7.2 does it: every format QEMU knows is
 * recognised by what its own probe looks at (a magic number, a signature,
 * for dmg the file name), scored as QEMU scores it, and the highest score
 * wins; raw scores 1 and so wins only when nothing else matches. tern opens
 * raw and qcow2; knowing the others lets it refuse them by name instead of
 * opening, say, a VMDK as raw and letting the guest overwrite its header.
 * The facts (offsets, magics, scores) come from QEMU's block/<format>.c
 * probes; only the first BDRV_PROBE_BUF_SIZE bytes are looked at.
 */
#include <string.h>

#include "block/block-int.h"

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32_at(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
           (uint32_t)p[1] << 8 | p[0];
}

/* A NUL-terminated string that fills at most 'field' bytes at buf. */
static bool field_is(const uint8_t *buf, size_t field, const char *s)
{
    size_t n = strlen(s);
    return n < field && !memcmp(buf, s, n + 1);
}

static int probe_bochs(const uint8_t *buf, size_t len, const char *name)
{
    if (len < 512 || !field_is(buf, 32, "Bochs Virtual HD Image") ||
        !field_is(buf + 32, 16, "Redolog") ||
        !field_is(buf + 48, 16, "Growing")) {
        return 0;
    }
    uint32_t version = le32_at(buf + 64);
    return version == 0x00020000 || version == 0x00010000 ? 100 : 0;
}

static int probe_cloop(const uint8_t *buf, size_t len, const char *name)
{
    static const char magic[] = "#!/bin/sh\n#V2.0 Format\n"
        "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
    return !memcmp(buf, magic, MIN(len, sizeof(magic) - 1)) ? 2 : 0;
}

static int probe_dmg(const uint8_t *buf, size_t len, const char *name)
{
    return name && strlen(name) > 4 && g_str_has_suffix(name, ".dmg") ? 2 : 0;
}

static int probe_luks(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 8 && !memcmp(buf, "LUKS\xba\xbe", 6) &&
           buf[6] == 0 && buf[7] == 1 ? 100 : 0;
}

static int probe_parallels(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 64 && (!memcmp(buf, "WithoutFreeSpace", 16) ||
                         !memcmp(buf, "WithouFreSpacExt", 16)) &&
           le32_at(buf + 16) == 2 ? 100 : 0;
}

static int probe_qcow(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 48 && be32_at(buf) == 0x514649fb &&
           be32_at(buf + 4) == 1 ? 100 : 0;
}

static int probe_qcow2(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 8 && be32_at(buf) == 0x514649fb &&
           be32_at(buf + 4) >= 2 ? 100 : 0;
}

static int probe_qed(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 64 && !memcmp(buf, "QED", 4) ? 100 : 0;
}

static int probe_vdi(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 512 && le32_at(buf + 64) == 0xbeda107f ? 100 : 0;
}

static int probe_vhdx(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 8 && !memcmp(buf, "vhdxfile", 8) ? 100 : 0;
}

static int probe_vpc(const uint8_t *buf, size_t len, const char *name)
{
    return len >= 8 && !memcmp(buf, "conectix", 8) ? 100 : 0;
}

/* A VMDK descriptor file: comment lines and blank lines (spaces, an
 * optional CR), then "version=1", "=2" or "=3" on a line of its own. */
static int probe_vmdk_text(const char *p, const char *end)
{
    while (p < end) {
        if (*p == '#') {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            p = nl ? nl + 1 : end;
            continue;
        }
        if (*p == ' ') {
            while (p < end && *p == ' ') {
                p++;
            }
            if (p < end && *p == '\r') {
                p++;
            }
            if (p == end || *p != '\n') {
                return 0;
            }
            p++;
            continue;
        }
        size_t left = (size_t)(end - p);
        if (left < 10 || memcmp(p, "version=", 8) || p[8] < '1' ||
            p[8] > '3') {
            return 0;
        }
        return p[9] == '\n' || (left >= 11 && !memcmp(p + 9, "\r\n", 2))
               ? 100 : 0;
    }
    return 0;
}

static int probe_vmdk(const uint8_t *buf, size_t len, const char *name)
{
    if (len < 4) {
        return 0;
    }
    if (!memcmp(buf, "KDMV", 4) || !memcmp(buf, "COWD", 4)) {
        return 100;
    }
    return probe_vmdk_text((const char *)buf, (const char *)buf + len);
}

static int probe_raw(const uint8_t *buf, size_t len, const char *name)
{
    return 1;               /* anything is raw, as a last resort */
}

static const struct {
    const char *format;
    int (*probe)(const uint8_t *buf, size_t len, const char *filename);
} probes[] = {
    { "raw", probe_raw },
    { "qcow2", probe_qcow2 },
    { "qcow", probe_qcow },
    { "vmdk", probe_vmdk },
    { "vdi", probe_vdi },
    { "vhdx", probe_vhdx },
    { "vpc", probe_vpc },
    { "qed", probe_qed },
    { "dmg", probe_dmg },
    { "parallels", probe_parallels },
    { "cloop", probe_cloop },
    { "bochs", probe_bochs },
    { "luks", probe_luks },
};

const char *bdrv_probe_buffer(const uint8_t *buf, size_t len,
                              const char *filename)
{
    const char *best = "raw";
    int best_score = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(probes); i++) {
        int score = probes[i].probe(buf, len, filename);
        if (score > best_score) {
            best_score = score;
            best = probes[i].format;
        }
    }
    return best;
}

bool bdrv_format_is_known(const char *format)
{
    for (size_t i = 0; i < G_N_ELEMENTS(probes); i++) {
        if (!strcmp(probes[i].format, format)) {
            return true;
        }
    }
    return false;
}
