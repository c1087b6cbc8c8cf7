#!/usr/bin/python3
"""Checks what the loggers wrote, with a third implementation (neither the C writer nor the Lua reader):
TensorBoard event files read by hand (TFRecord framing, masked CRC-32C, the Event protobuf), metrics.csv
with Python's csv module and hparams.yaml with PyYAML. The tensorboard and protobuf packages are not
installed here, so TensorBoard's own EventAccumulator cannot be run; this follows its format instead.

  /usr/bin/python3 tools/check_logs.py PATH...   (event files, or folders searched for events.out.tfevents.*,
                                                  metrics.csv and hparams.yaml)
Prints every event decoded; exits non-zero on any framing, CRC or decoding error.
"""
import csv, glob, os, struct, sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(data):
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 12, f"truncated record header at {pos}"
        (n,) = struct.unpack_from("<Q", data, pos)
        (crc,) = struct.unpack_from("<I", data, pos + 8)
        assert masked(data[pos:pos + 8]) == crc, f"length CRC mismatch at {pos}"
        payload = data[pos + 12:pos + 12 + n]
        assert len(payload) == n and pos + 16 + n <= len(data), f"truncated record at {pos}"
        (crc,) = struct.unpack_from("<I", data, pos + 12 + n)
        assert masked(payload) == crc, f"data CRC mismatch at {pos}"
        yield payload
        pos += 16 + n


def fields(msg):
    """-> list of (field, wire type, value)"""
    out, pos = [], 0
    def varint():
        nonlocal pos
        v = shift = 0
        while True:
            b = msg[pos]; pos += 1
            v |= (b & 0x7F) << shift; shift += 7
            if b < 0x80:
                return v
    while pos < len(msg):
        key = varint()
        f, w = key >> 3, key & 7
        if w == 0:
            v = varint()
        elif w == 1:
            v = msg[pos:pos + 8]; pos += 8
        elif w == 5:
            v = msg[pos:pos + 4]; pos += 4
        elif w == 2:
            n = varint(); v = msg[pos:pos + n]; pos += n
        else:
            raise ValueError(f"wire type {w}")
        out.append((f, w, v))
    assert pos == len(msg), "message overruns"
    return out


def describe(msg, schema, depth=0):
    """Decodes with a schema {field: (name, kind, subschema)}; strings must be UTF-8 (proto3 rule)."""
    out = {}
    for f, w, v in fields(msg):
        name, kind, sub = schema.get(f, (f"field{f}", "raw", None))
        want = {"double": 1, "float": 5, "int": 0, "string": 2, "bytes": 2, "msg": 2}.get(kind)
        assert want is None or want == w, f"{name}: wire type {w}, expected {want}"
        if kind == "double":
            v = struct.unpack("<d", v)[0]
        elif kind == "float":
            v = struct.unpack("<f", v)[0]
        elif kind == "string":
            v = v.decode("utf-8")
        elif kind == "int" and v >= 1 << 63:
            v -= 1 << 64
        elif kind == "msg":
            v = describe(v, sub, depth + 1)
        out.setdefault(name, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


VALUE = {1: ("null_value", "int", None), 2: ("number_value", "double", None), 3: ("string_value", "string", None), 4: ("bool_value", "int", None)}
HPARAMS = {
    1: ("version", "int", None),
    2: ("experiment", "msg", {4: ("hparam_infos", "msg", {1: ("name", "string", None), 4: ("type", "int", None)}),
                              5: ("metric_infos", "msg", {1: ("name", "msg", {1: ("group", "string", None),
                                                                                2: ("tag", "string", None)})})}),
    3: ("session_start_info", "msg", {1: ("hparams", "msg", {1: ("key", "string", None), 2: ("value", "msg", VALUE)})}),
    4: ("session_end_info", "msg", {1: ("status", "int", None)}),
}
PLUGIN = {1: ("plugin_name", "string", None), 2: ("content", "bytes", None)}
SUMMARY_VALUE = {1: ("tag", "string", None), 2: ("simple_value", "float", None),
                 9: ("metadata", "msg", {1: ("plugin_data", "msg", PLUGIN)})}
EVENT = {1: ("wall_time", "double", None), 2: ("step", "int", None), 3: ("file_version", "string", None),
         5: ("summary", "msg", {1: ("value", "msg", SUMMARY_VALUE)}), 10: ("source_metadata", "msg", {1: ("writer", "string", None)})}


def check_events(path):
    data = open(path, "rb").read()
    events = [describe(p, EVENT) for p in records(data)]
    assert events and events[0].get("file_version") == "brain.Event:2", "the first event must be the file version"
    print(f"{path}: {len(events)} events, framing and CRCs OK")
    for e in events:
        v = e.get("summary", {}).get("value")
        if v and "metadata" in v:
            content = v["metadata"]["plugin_data"]["content"]
            v = dict(v, metadata={"plugin": v["metadata"]["plugin_data"]["plugin_name"],
                                  "content": describe(content, HPARAMS)})
            e = dict(e, summary={"value": v})
        print("  ", {k: (round(x, 3) if k == "wall_time" else x) for k, x in e.items()})
    return events


def main(paths):
    if not paths:
        sys.exit(__doc__)
    for p in paths:
        files = [p] if os.path.isfile(p) else sorted(glob.glob(f"{p}/**/*", recursive=True))
        for f in files:
            base = os.path.basename(f)
            if base.startswith("events.out.tfevents.") or f == p and base.endswith(".tfevents"):
                check_events(f)
            elif base == "metrics.csv":
                rows = list(csv.DictReader(open(f, newline="")))
                print(f"{f}: columns {list(rows[0].keys()) if rows else []}, {len(rows)} rows")
            elif base == "hparams.yaml":
                import yaml
                print(f"{f}: {yaml.safe_load(open(f))}")


if __name__ == "__main__":
    main(sys.argv[1:])
