#!/usr/bin/env python3
"""The PyTorch side of bench/io_bench.lua, on the same file: one round (bench/io_bench.lua runs it once
per pair). Usage: PYTHON bench/io_bench_torch.py FILE.safetensors ROUNDS
Prints "version <torch version>", then lines "<case> <milliseconds>", the best of ROUNDS:
  st_load    read FILE as safetensors.torch.load_file does (read, parse the JSON header, torch.frombuffer
             per tensor, copy out); the safetensors package is not installed, this is its algorithm
  st_save    write the same tensors as a safetensors file (header, raw bytes, fsync)
  pt_save    torch.save of the same state dict (PyTorch's own format), fsync
  pt_load    torch.load of it
"""
import json, os, struct, sys, tempfile, time

import torch


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    dtypes = {"F32": torch.float32, "I64": torch.int64}
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b:base + end]), dtype=dtypes[e["dtype"]]) if end > b else torch.empty(0)
        out[name] = t.reshape(e["shape"])
    return out


def save(path, tensors):
    names = sorted(tensors)
    header, offset, chunks = {}, 0, []
    for k in names:
        raw = tensors[k].contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32" if tensors[k].dtype == torch.float32 else "I64", "shape": list(tensors[k].shape),
                     "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for c in chunks:
            f.write(c)
        f.flush()
        os.fsync(f.fileno())


def best_ms(fn, rounds):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main():
    path, rounds = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    print("version", torch.__version__.split("+")[0])
    tensors = load(path)
    tmp = tempfile.mkdtemp()
    st_path, pt_path = os.path.join(tmp, "b.safetensors"), os.path.join(tmp, "b.pt")

    def pt_save():
        with open(pt_path, "wb") as f:
            torch.save(tensors, f)
            f.flush()
            os.fsync(f.fileno())

    print("st_load", best_ms(lambda: load(path), rounds))
    print("st_save", best_ms(lambda: save(st_path, tensors), rounds))
    print("pt_save", best_ms(pt_save, rounds))
    print("pt_load", best_ms(lambda: torch.load(pt_path), rounds))
    for p in (st_path, pt_path):
        os.remove(p)
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
