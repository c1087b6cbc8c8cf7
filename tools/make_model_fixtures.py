"""Writes spec/fixtures/nn/model_train_step.safetensors: one training step of the reference model
(BasicImageClassifier with dropout 0, so that it is deterministic) in PyTorch, starting from the seed
weights in spec/fixtures/io/seed_model_weights.safetensors: an input batch, 1-based targets, the logits,
the loss, the gradient of every parameter and the BatchNorm buffers afterwards -- for
spec/models_spec.lua. Run with Debian's PyTorch: /usr/bin/python3 tools/make_model_fixtures.py
(safetensors is read and written by hand here: the Python package is not installed)."""
import json
import os
import struct
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from torch_reference import BasicImageClassifier  # noqa: E402

HERE = os.path.dirname(__file__)
OUT = os.path.join(HERE, "..", "spec", "fixtures", "nn", "model_train_step.safetensors")
SEED = os.path.join(HERE, "..", "spec", "fixtures", "io", "seed_model_weights.safetensors")


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": torch.float32, "I64": torch.int64}[e["dtype"]]
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:end]), dtype=dtype).reshape(e["shape"])
    return out


def save_safetensors(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(1)
    model = BasicImageClassifier(dropout_rate=0.0)
    model.load_state_dict(load_safetensors(SEED))
    model.train()
    x = torch.randn(8, 3, 32, 32)
    y = torch.randint(0, 10, (8,))
    logits = model(x)
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, y)
    loss.backward()
    tensors = {}
    tensors.update({"input": x, "target": (y + 1).float(), "logits": logits, "loss": loss.reshape(1)})
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad
    for name, b in model.named_buffers():
        tensors["after." + name] = b
    save_safetensors(OUT, tensors, {"torch": torch.__version__, "label_smoothing": "0.1"})
    print("wrote", OUT, len(tensors), "tensors; loss", loss.item())


if __name__ == "__main__":
    main()
