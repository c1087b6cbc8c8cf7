#!/usr/bin/python3
"""Writes spec/fixtures/plot/make_grid.lua: torchvision.utils.make_grid's results on small random batches
(gray and RGB, one or several rows, a partial last row, padding and pad_value, normalize with and without
value_range and scale_each, a single image), for spec/plot_grid_spec.lua, which then needs no torchvision.
Run with Debian's torchvision:  /usr/bin/python3 tools/make_plot_fixtures.py"""
import os

import torch
import torchvision
from torchvision.utils import make_grid

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "spec", "fixtures", "plot", "make_grid.lua")
torch.manual_seed(0)


def lua_tensor(t):
    t = t.detach().contiguous().float()
    shape = ", ".join(str(s) for s in t.shape)
    data = ", ".join("%.9g" % v for v in t.reshape(-1).tolist())
    return "{shape = {%s}, data = {%s}}" % (shape, data)


def lua_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "{" + ", ".join(lua_value(x) for x in v) + "}"
    return repr(v)


def main():
    inputs = {
        "rgb5": torch.rand(5, 3, 4, 3),
        "gray3": torch.rand(3, 1, 3, 4),
        "wide7": torch.randn(7, 3, 2, 2) * 2,  # values outside [0, 1], for normalize
        "one": torch.rand(1, 3, 3, 3),
    }
    cases = [
        ("default", "rgb5", {}),
        ("nrow2_pad1", "rgb5", {"nrow": 2, "padding": 1, "pad_value": 0.5}),
        ("gray", "gray3", {"nrow": 2}),
        ("no_padding", "gray3", {"padding": 0, "nrow": 3}),
        ("normalize", "wide7", {"nrow": 3, "normalize": True}),
        ("normalize_range", "wide7", {"nrow": 4, "normalize": True, "value_range": (-1.0, 1.0)}),
        ("scale_each", "wide7", {"nrow": 3, "normalize": True, "scale_each": True, "pad_value": 1.0}),
        ("single", "one", {"padding": 3}),
    ]
    lines = ["-- written by tools/make_plot_fixtures.py with torchvision %s; do not edit" % torchvision.__version__,
             "return {", "  inputs = {"]
    for name, t in inputs.items():
        lines.append("    %s = %s," % (name, lua_tensor(t)))
    lines += ["  },", "  cases = {"]
    for name, source, opts in cases:
        grid = make_grid(inputs[source].clone(), **opts)
        lua_opts = "{" + ", ".join("%s = %s" % (k, lua_value(v)) for k, v in opts.items()) + "}"
        lines.append("    {name = %r, input = %r, opts = %s, expected = %s}," % (name, source, lua_opts, lua_tensor(grid)))
    lines += ["  },", "}", ""]
    with open(OUT, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
