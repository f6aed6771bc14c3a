"""Reading a query-qmp-schema reply (QEMU's SchemaInfo list): resolving its
masked type names into comparable shapes, comparing two schemas' entries,
checking a value against a type, and making wrong arguments for a command
from its argument type (what the typed-argument tests send to tern and to
QEMU 7.2 alike)."""
import json


class Schema:
    def __init__(self, entries):
        self.by_name = {e["name"]: e for e in entries}

    def entry(self, name):
        return self.by_name[name]

    def names(self, meta):
        return {n for n, e in self.by_name.items() if e["meta-type"] == meta}

    def shape(self, name, seen=()):
        """A type as nested tuples, independent of the masked names."""
        e = self.by_name[name]
        mt = e["meta-type"]
        if mt == "builtin":
            return ("builtin", e["json-type"])
        if mt == "enum":
            return ("enum", tuple(e["values"]))
        if mt == "array":
            return ("array", self.shape(e["element-type"], seen))
        if mt == "alternate":
            return ("alternate", tuple(self.shape(m["type"], seen) for m in e["members"]))
        if name in seen:
            return ("recursive", name)
        seen = seen + (name,)
        return ("object",
                tuple((m["name"], "default" in m, self.shape(m["type"], seen))
                      for m in e["members"]),
                e.get("tag"),
                tuple((v["case"], self.shape(v["type"], seen))
                      for v in e.get("variants", [])))

    def entry_shape(self, name):
        e = self.by_name[name]
        if e["meta-type"] == "command":
            return (self.shape(e["arg-type"]), self.shape(e["ret-type"]))
        return self.shape(e["arg-type"])


def narrower(ours, theirs, a, b, path, out, seen=None):
    """Appends to out every way type a of schema ours is not a narrowing of
    type b of schema theirs: same members with the same optionality, enum
    values and union variants a subset, members only theirs has optional.
    A pair of types already being compared (a recursive type, such as
    BlockdevOptions through BlockdevRef) is compared once."""
    seen = set() if seen is None else seen
    if (a, b) in seen:
        return
    seen.add((a, b))
    ea, eb = ours.entry(a), theirs.entry(b)
    if ea["meta-type"] != eb["meta-type"]:
        out.append(f"{path}: {ea['meta-type']} vs {eb['meta-type']}")
        return
    mt = ea["meta-type"]
    if mt == "builtin" and ea["json-type"] != eb["json-type"]:
        out.append(f"{path}: {ea['json-type']} vs {eb['json-type']}")
    elif mt == "enum":
        extra = set(ea["values"]) - set(eb["values"])
        if extra:
            out.append(f"{path}: values {sorted(extra)} not in the reference")
    elif mt == "array":
        narrower(ours, theirs, ea["element-type"], eb["element-type"], path + "[]", out,
                 seen)
    elif mt == "alternate":
        if len(ea["members"]) != len(eb["members"]):
            out.append(f"{path}: alternatives differ")
        for x, y in zip(ea["members"], eb["members"]):
            narrower(ours, theirs, x["type"], y["type"], path + "|", out, seen)
    elif mt == "object":
        _narrower_object(ours, theirs, ea, eb, path, out, seen)


def _narrower_object(ours, theirs, ea, eb, path, out, seen):
    mb = {m["name"]: m for m in eb["members"]}
    ma = {m["name"]: m for m in ea["members"]}
    for m in ea["members"]:
        other = mb.get(m["name"])
        if other is None:
            out.append(f"{path}.{m['name']}: not in the reference")
            continue
        if ("default" in m) != ("default" in other):
            out.append(f"{path}.{m['name']}: optional {'default' in m} vs "
                       f"{'default' in other}")
        narrower(ours, theirs, m["type"], other["type"], f"{path}.{m['name']}", out,
                 seen)
    for m in eb["members"]:
        if m["name"] not in ma and "default" not in m:
            out.append(f"{path}.{m['name']}: mandatory in the reference, absent")
    if ea.get("tag") != eb.get("tag"):
        out.append(f"{path}: tag {ea.get('tag')} vs {eb.get('tag')}")
    vb = {v["case"]: v for v in eb.get("variants", [])}
    for v in ea.get("variants", []):
        if v["case"] not in vb:
            out.append(f"{path}: variant {v['case']} not in the reference")
        else:
            narrower(ours, theirs, v["type"], vb[v["case"]]["type"],
                     f"{path}<{v['case']}>", out, seen)


JSON_TYPES = {"string": str, "boolean": bool, "number": (int, float), "null": type(None)}


def check_value(schema, name, v, path="value"):
    """Raises AssertionError if v is not a value of type name."""
    e = schema.entry(name)
    mt = e["meta-type"]
    if mt == "builtin":
        jt = e["json-type"]
        if jt == "int":
            assert isinstance(v, int) and not isinstance(v, bool), f"{path}: {v!r} not int"
        elif jt in JSON_TYPES:
            assert isinstance(v, JSON_TYPES[jt]) and (jt == "boolean" or
                                                      not isinstance(v, bool)), \
                f"{path}: {v!r} not {jt}"
    elif mt == "enum":
        assert v in e["values"], f"{path}: {v!r} not one of {e['values']}"
    elif mt == "array":
        assert isinstance(v, list), f"{path}: {v!r} not an array"
        for i, x in enumerate(v):
            check_value(schema, e["element-type"], x, f"{path}[{i}]")
    elif mt == "alternate":
        errors = []
        for m in e["members"]:
            try:
                check_value(schema, m["type"], v, path)
                return
            except AssertionError as err:
                errors.append(str(err))
        raise AssertionError(f"{path}: no alternative fits: {errors}")
    elif mt == "object":
        _check_object(schema, e, v, path)


def _check_object(schema, e, v, path):
    assert isinstance(v, dict), f"{path}: {v!r} not an object"
    members = list(e["members"])
    if e.get("tag"):
        for var in e.get("variants", []):
            if var["case"] == v.get(e["tag"]):
                members += schema.entry(var["type"])["members"]
    known = {m["name"] for m in members}
    for m in members:
        if m["name"] in v:
            check_value(schema, m["type"], v[m["name"]], f"{path}.{m['name']}")
        else:
            assert "default" in m, f"{path}: mandatory {m['name']!r} missing"
    extra = set(v) - known
    assert not extra, f"{path}: members {sorted(extra)} not in the schema"


# Values of each JSON kind, wrong for most types; integers at and past the
# edges of the widths QEMU masks as "int" (uint8, uint32, uint64, int64).
WRONG = ["x", 1, 1.5, True, None, {}, [], -1, 256, 4294967296,
         18446744073709551615, -9223372036854775808, 9223372036854775808]


def sample(schema, name, depth=0):
    """A valid value of the type (the first of everything), or None."""
    e = schema.entry(name)
    mt = e["meta-type"]
    if mt == "builtin":
        return {"string": "x", "int": 0, "number": 0, "boolean": False,
                "null": None, "value": 0}[e["json-type"]]
    if mt == "enum":
        return e["values"][0]
    if mt == "array":
        return []
    if mt == "alternate":
        return sample(schema, e["members"][0]["type"], depth)
    if depth > 4:
        return {}
    out = {m["name"]: sample(schema, m["type"], depth + 1)
           for m in e["members"] if "default" not in m}
    if e.get("tag") and e.get("variants"):
        var = e["variants"][0]
        out[e["tag"]] = var["case"]
        out.update(sample(schema, var["type"], depth + 1))
    return out


def wrong_arguments(schema, name):
    """Argument objects for command name that each get one member wrong:
    missing, unexpected, of every other JSON kind, and the same one level
    down in arrays and objects."""
    base = sample(schema, schema.entry(name)["arg-type"])
    out = [dict(base, zzz=1)]
    _mutate_object(schema, schema.entry(name)["arg-type"], base, out.append, 0)
    seen, unique = set(), []
    for args in out:
        key = json.dumps(args, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(args)
    return unique


def _mutate_object(schema, tname, base, emit, depth):
    e = schema.entry(tname)
    for m in e["members"]:
        if "default" not in m:
            emit({k: v for k, v in base.items() if k != m["name"]})
        for w in WRONG:
            emit(dict(base, **{m["name"]: w}))
        if depth < 2:
            _mutate_inner(schema, m, base, emit, depth)


def _mutate_inner(schema, m, base, emit, depth):
    inner = schema.entry(m["type"])
    if inner["meta-type"] == "array":
        elem = schema.entry(inner["element-type"])
        good = sample(schema, inner["element-type"])
        for w in WRONG:
            emit(dict(base, **{m["name"]: [good, w]}))
        if elem["meta-type"] == "object":
            _mutate_object(schema, inner["element-type"], good,
                           lambda x: emit(dict(base, **{m["name"]: [x]})), depth + 1)
            emit(dict(base, **{m["name"]: [dict(good, zzz=1)]}))
    elif inner["meta-type"] == "object":
        good = sample(schema, m["type"])
        _mutate_object(schema, m["type"], good,
                       lambda x: emit(dict(base, **{m["name"]: x})), depth + 1)
