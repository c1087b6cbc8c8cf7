#!/usr/bin/env python3
"""The torchvision side of bench/data_bench.lua: the same CIFAR-10 binary batches, transforms and batch
size; one round (bench/data_bench.lua runs it once per pair).
torchvision's CIFAR10 class wants the Python pickle version of the data set, so the binary batches are
read here into one uint8 tensor (N, 3, 32, 32), as lightning keeps them.
With a PNG folder as fourth argument, also torchvision's ImageFolder (PIL decoding, ToTensor) over it.
Usage: PYTHON bench/data_bench_torch.py FOLDER EPOCHS WORKERS [PNG_FOLDER]   (WORKERS: "0,1,2")
Prints "version <torchvision version>", "read_s <seconds>", then "memory_w<N> <images/s>" (and
"folder_w<N> <images/s>") for each number of workers, the best of EPOCHS shuffled epochs."""
import os
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T


NORMALIZE = T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


class Cifar(torch.utils.data.Dataset):
    def __init__(self, folder):
        raw = b"".join(open(os.path.join(folder, "data_batch_%d.bin" % i), "rb").read() for i in range(1, 6))
        records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
        self.targets = torch.from_numpy(records[:, 0].astype(np.int64))
        self.images = torch.from_numpy(records[:, 1:].copy()).reshape(-1, 3, 32, 32)
        self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), NORMALIZE])

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        x = self.images[i].float().div_(255)  # what ToTensor does to a uint8 image
        return self.transform(x), self.targets[i]


def rate(ds, workers, epochs):
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=workers)
    best = 0
    for _ in range(epochs):
        images, start = 0, time.perf_counter()
        for x, _ in loader:
            images += x.shape[0]
        best = max(best, images / (time.perf_counter() - start))
    return best


def main():
    folder, epochs = sys.argv[1], int(sys.argv[2])
    workers = [int(n) for n in sys.argv[3].split(",")]
    torch.set_num_threads(1)
    print("version", torchvision.__version__.split("+")[0], flush=True)
    t0 = time.perf_counter()
    ds = Cifar(folder)
    print("read_s %.3f" % (time.perf_counter() - t0), flush=True)
    pngs = None
    if len(sys.argv) > 4:
        pngs = torchvision.datasets.ImageFolder(sys.argv[4], transform=T.Compose(
            [T.ToTensor(), T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), NORMALIZE]))
    for n in workers:
        print("memory_w%d %.1f" % (n, rate(ds, n, epochs)), flush=True)
    if pngs is not None:
        for n in workers:
            print("folder_w%d %.1f" % (n, rate(pngs, n, epochs)), flush=True)


if __name__ == "__main__":
    main()
