"""Writes spec/fixtures/nn/autograd_composite.safetensors: a model that is not a plain stack of layers
(two branches concatenated, a residual addition, GELU and a pooling) and a loss with a penalty on the
logits (cross-entropy with label smoothing + 0.01 mean(logits^2) + 0.001 ||W||^2 on the head), with
PyTorch's autograd: the weights ("w.<name>"), the input and targets, the loss, and the gradient of
every parameter ("grad.<name>") and of the input ("grad.input"). spec/autograd_spec.lua computes the
same with ours. Run with PyTorch (Debian's, or bench/setup_peers.sh's venv):
    .venv-peers/bin/python tools/make_autograd_fixtures.py"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
from make_model_fixtures import save_safetensors  # noqa: E402

OUT = os.path.join(HERE, "..", "spec", "fixtures", "nn", "autograd_composite.safetensors")


class Composite(nn.Module):
    def __init__(self):
        super().__init__()
        self.wide = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.thin = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())
        self.mix = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x):
        h = torch.cat([self.wide(x), self.thin(x)], 1)
        h = h + F.gelu(self.mix(h))                      # a residual addition
        h = F.max_pool2d(h, 2)
        return self.head(h.flatten(1))


def main():
    torch.manual_seed(0)
    model = Composite().train()
    x = torch.randn(4, 3, 6, 6, requires_grad=True)
    y = torch.tensor([0, 3, 4, 1])
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=0.1) + 0.01 * (logits ** 2).mean() \
        + 0.001 * (model.head.weight ** 2).sum()
    loss.backward()
    tensors = {"input": x, "target": (y + 1).float(), "loss": loss.reshape(1), "grad.input": x.grad}
    for name, p in model.named_parameters():
        tensors["w." + name] = p
        tensors["grad." + name] = p.grad
    save_safetensors(OUT, tensors, {"tool": "tools/make_autograd_fixtures.py", "torch": torch.__version__})
    print("wrote", OUT, "loss", loss.item())


if __name__ == "__main__":
    main()
