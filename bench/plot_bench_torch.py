#!/usr/bin/env python3
"""The torchvision side of bench/plot_bench.lua, one round (bench/plot_bench.lua runs it once per pair):
make_grid + save_image of the first N CIFAR-10 test images (the same images as the Lua side), written
to a file that is then fsync'd, as L.data.write_png does.
Usage: PYTHON bench/plot_bench_torch.py TEST_BATCH.bin N ROUNDS OUT.png
Prints "version <torchvision version>", "grid <milliseconds>" (make_grid alone) and
"grid_png <milliseconds>", best of ROUNDS."""
import os, sys, time

import torch
import torchvision
from torchvision.utils import make_grid, save_image


def main():
    path, n, rounds, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    print("version", torchvision.__version__.split("+")[0], flush=True)
    with open(path, "rb") as f:
        raw = f.read(n * 3073)
    rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(n, 3073)
    images = rows[:, 1:].reshape(n, 3, 32, 32).float() / 255
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        make_grid(images, nrow=8, padding=2)
        best = min(best, time.perf_counter() - t0)
    print("grid %.3f" % (best * 1e3))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        grid = make_grid(images, nrow=8, padding=2)
        with open(out, "wb") as f:
            save_image(grid, f, format="png")
            f.flush()
            os.fsync(f.fileno())
        best = min(best, time.perf_counter() - t0)
    print("grid_png %.3f" % (best * 1e3))


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
