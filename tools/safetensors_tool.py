#!/usr/bin/python3
"""safetensors without the safetensors package (it is not installed here): a reader and writer of the
format written from its specification, on PyTorch 1.13 (Debian's python3-torch; run with /usr/bin/python3).

  /usr/bin/python3 tools/safetensors_tool.py fixtures OUTDIR
      writes the reader fixtures of spec/io_safetensors_spec.lua:
        dtypes.safetensors: for each dtype D a tensor "D" and "D.expected" (F32: what PyTorch's .float()
          or numpy's float32 makes of it), and "convert.src" (F32) with "convert.F16" / "convert.BF16"
          (PyTorch's .half() / .bfloat16() of it, round to nearest even), for the writer's conversions
        seed_model_weights.json: name -> dtype, shape, sum and first/last values, read by this script from
          seed_model_weights.safetensors (an independent check of our reader)
  /usr/bin/python3 tools/safetensors_tool.py check FILE [--model]
      reads FILE strictly (what Python's safetensors would accept), prints its tensors, and with --model
      loads it with load_state_dict(strict=True) into the reference BasicImageClassifier (the PyTorch
      model of ../shared/fixtures/make_reference_fixtures.py), which is what
      `model.load_state_dict(safetensors.torch.load_file(path))` does.
  /usr/bin/python3 tools/safetensors_tool.py compare A B
      checks that two files hold the same tensors (names, dtypes, shapes, values bit for bit) and metadata.
"""
import json, struct, sys
import numpy as np
import torch

DTYPES = {  # name -> (numpy dtype, torch dtype or None where torch 1.13 has none)
    "F64": (np.float64, torch.float64), "F32": (np.float32, torch.float32), "F16": (np.float16, torch.float16),
    "BF16": (None, torch.bfloat16), "I64": (np.int64, torch.int64), "I32": (np.int32, torch.int32),
    "I16": (np.int16, torch.int16), "I8": (np.int8, torch.int8), "U64": (np.uint64, None),
    "U32": (np.uint32, None), "U16": (np.uint16, None), "U8": (np.uint8, torch.uint8), "BOOL": (np.bool_, torch.bool),
}
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
         "U16": 2, "U8": 1, "BOOL": 1}


def read(path):
    """-> ({name: (dtype, shape, raw bytes)}, metadata or None); raises on anything malformed."""
    b = open(path, "rb").read()
    assert len(b) >= 8, "shorter than 8 bytes"
    n = struct.unpack("<Q", b[:8])[0]
    assert n <= 100_000_000 and 8 + n <= len(b), "bad header length"
    assert (8 + n) % 8 == 0, "the data does not start 8-byte aligned (Python's writer pads the header)"
    header = json.loads(b[8:8 + n].decode("utf-8"))
    data = b[8 + n:]
    meta = header.pop("__metadata__", None)
    if meta is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "metadata must be strings"
    spans, out = [], {}
    for name, e in header.items():
        assert set(e) == {"dtype", "shape", "data_offsets"}, name
        begin, end = e["data_offsets"]
        numel = int(np.prod(e["shape"])) if e["shape"] else 1
        assert end - begin == numel * SIZES[e["dtype"]], name
        spans.append((begin, end))
        out[name] = (e["dtype"], e["shape"], data[begin:end])
    at = 0
    for begin, end in sorted(spans):
        assert begin == at, "overlap or hole"
        at = end
    assert at == len(data), "trailing bytes"
    return out, meta


def to_torch(dtype, shape, raw):
    if dtype == "BF16":
        as_i16 = torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy())
        return as_i16.view(torch.bfloat16).reshape(shape)
    npd, td = DTYPES[dtype]
    arr = np.frombuffer(raw, dtype=np.dtype(npd).newbyteorder("<")).copy().reshape(shape)
    return torch.from_numpy(arr) if td is not None else arr


def write(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, raw bytes)}, laid out as the Python library does (larger
    elements first, then by name), the header padded with spaces to a multiple of 8."""
    order = sorted(tensors, key=lambda k: (-SIZES[tensors[k][0]], k))
    header, offset, data = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def f32_bytes(values):
    return np.asarray(values, dtype="<f4").tobytes()


def make_fixtures(outdir):
    ints = {
        "I64": [0, 1, -1, 3, 2**40 + 1, -2**63, 2**63 - 1], "I32": [0, -7, 2**31 - 1, -2**31, 16777217],
        "I16": [0, 5, -32768, 32767], "I8": [0, -128, 127, 42], "U64": [0, 7, 2**64 - 1], "U32": [0, 2**32 - 1, 99],
        "U16": [0, 65535, 1234], "U8": [0, 255, 17], "BOOL": [True, False, True],
    }
    t = {}
    for d, vals in ints.items():
        npd = DTYPES[d][0]
        arr = np.asarray(vals, dtype=np.dtype(npd).newbyteorder("<"))
        t[d] = (d, [len(vals)], arr.tobytes())
        t[d + ".expected"] = ("F32", [len(vals)], f32_bytes(arr.astype(np.float32)))
    floats = [0.0, -0.0, 1.0, -2.5, 1e-3, 3.14159265358979, 65504.0, 1e-7, 6e-8, float("inf"), float("-inf"), 1e300]
    f64 = torch.tensor(floats, dtype=torch.float64)
    t["F64"] = ("F64", [2, 6], f64.numpy().astype("<f8").tobytes())
    t["F64.expected"] = ("F32", [2, 6], f32_bytes(f64.float().numpy()))
    f16 = torch.tensor(floats[:9] + [float("inf"), float("-inf"), float("nan")], dtype=torch.float16)
    t["F16"] = ("F16", [12], f16.numpy().astype("<f2").tobytes())
    t["F16.expected"] = ("F32", [12], f32_bytes(f16.float().numpy()))
    bf = torch.tensor(floats[:10] + [1e30, float("nan")], dtype=torch.float32).bfloat16()
    t["BF16"] = ("BF16", [3, 4], bf.view(torch.int16).numpy().astype("<i2").tobytes())
    t["BF16.expected"] = ("F32", [3, 4], f32_bytes(bf.float().numpy()))
    t["scalar"] = ("F32", [], f32_bytes([2.5]))
    t["empty"] = ("F32", [0, 3], b"")

    # float32 -> F16 / BF16, ties and edges included
    e = 2.0 ** -11
    src = [1 + e, 1 + 3 * e, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 2 ** -25, 3 * 2 ** -25, 2 ** -24, 65519.0, 65520.0, 1e-8,
           -1 - 3 * e, 0.1, 1.0 / 3, 70000.0, -0.0, 5.96e-8, 6.1e-5, 1e38, 3.3895e38]
    src32 = torch.tensor(src, dtype=torch.float32)
    t["convert.src"] = ("F32", [len(src)], f32_bytes(src32.numpy()))
    t["convert.F16"] = ("F16", [len(src)], src32.half().numpy().astype("<f2").tobytes())
    t["convert.BF16"] = ("BF16", [len(src)], src32.bfloat16().view(torch.int16).numpy().astype("<i2").tobytes())
    write(f"{outdir}/dtypes.safetensors", t, {"written_by": "tools/safetensors_tool.py", "torch": torch.__version__})

    tensors, meta = read(f"{outdir}/seed_model_weights.safetensors")
    summary = {"__metadata__": meta}
    for name, (dtype, shape, raw) in tensors.items():
        x = to_torch(dtype, shape, raw).double().flatten()
        summary[name] = {"dtype": dtype, "shape": shape, "sum": x.sum().item(), "first": x[0].item(),
                         "last": x[-1].item()}
    with open(f"{outdir}/seed_model_weights.json", "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    print("wrote", f"{outdir}/dtypes.safetensors", "and", f"{outdir}/seed_model_weights.json")


def reference_model():
    import torch.nn as nn

    class BasicImageClassifier(nn.Module):  # the layers (and so the state_dict names) of the seed model
        def __init__(self, num_classes=10, in_ch=3, image_size=32):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(in_ch, 32, 3, padding=1), nn.BatchNorm2d(32)
            self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64)
            self.conv3, self.bn3 = nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128)
            self.conv4, self.bn4 = nn.Conv2d(128, 256, 3, padding=1), nn.BatchNorm2d(256)
            self.fc1, self.bn_fc1 = nn.Linear(256 * (image_size // 16) ** 2, 512), nn.BatchNorm1d(512)
            self.fc2, self.bn_fc2 = nn.Linear(512, 256), nn.BatchNorm1d(256)
            self.fc3 = nn.Linear(256, num_classes)
    return BasicImageClassifier()


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "fixtures":
        make_fixtures(sys.argv[2])
    elif cmd == "check":
        tensors, meta = read(sys.argv[2])
        print("metadata:", meta)
        sd = {}
        for name, (dtype, shape, raw) in sorted(tensors.items()):
            x = to_torch(dtype, shape, raw)
            print(f"  {name}: {dtype} {shape}")
            sd[name] = x
        if "--model" in sys.argv:
            m = reference_model()
            m.load_state_dict(sd, strict=True)
            bn = [k for k in sd if k.endswith("num_batches_tracked")]
            assert all(sd[k].dtype == torch.int64 and sd[k].dim() == 0 for k in bn)
            print(f"load_state_dict(strict=True) accepted {len(sd)} tensors ({len(bn)} int64 scalars)")
        print("OK")
    elif cmd == "compare":
        (a, ma), (b, mb) = read(sys.argv[2]), read(sys.argv[3])
        assert ma == mb, f"metadata differs: {ma} vs {mb}"
        assert set(a) == set(b), f"names differ: {set(a) ^ set(b)}"
        for k in a:
            assert a[k] == b[k], f"{k} differs"
        print(f"OK: {len(a)} tensors and the metadata are identical")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
