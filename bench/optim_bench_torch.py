#!/usr/bin/env python3
"""The PyTorch side of bench/optim_bench.lua: one round of milliseconds per optimizer step over the
shapes in bench/optim_shapes.txt (bench/optim_bench.lua runs it once per pair).
Usage: PYTHON bench/optim_bench_torch.py THREADS SECONDS   (SECONDS per case)
Prints "version <torch version>", then one line per case: "<case> <ms per step>"."""
import os
import sys
import time

import torch


def shapes():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_shapes.txt")
    with open(path) as f:
        return [tuple(int(d) for d in line.split()[1:]) for line in f if line.strip() and not line.startswith("#")]


def ms_per_step(step, seconds, rounds=10):
    """The best of `rounds` timings of seconds / rounds each: the machine is shared, the best round is
    the one least disturbed."""
    for _ in range(5):
        step()
    best = float("inf")
    for _ in range(rounds):
        reps, t0 = 0, time.perf_counter()
        while True:
            step()
            reps += 1
            if time.perf_counter() - t0 > seconds / rounds and reps >= 3:
                break
        best = min(best, (time.perf_counter() - t0) / reps * 1e3)
    return best


def main():
    threads, seconds = int(sys.argv[1]), float(sys.argv[2])
    torch.set_num_threads(threads)
    print("version", torch.__version__.split("+")[0], flush=True)
    torch.manual_seed(0)
    params = [torch.randn(s, requires_grad=True) for s in shapes()]
    for p in params:
        p.grad = torch.randn(p.shape) * 1e-3
    cases = [
        ("adam", lambda: torch.optim.Adam(params, lr=1e-3)),
        ("adam_foreach", lambda: torch.optim.Adam(params, lr=1e-3, foreach=True)),
        ("adamw", lambda: torch.optim.AdamW(params, lr=1e-3)),
        ("sgd_momentum", lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True)),
    ]
    with torch.no_grad():
        for name, make in cases:
            opt = make()
            print(name, ms_per_step(opt.step, seconds), flush=True)
        print("clip_grad_norm", ms_per_step(lambda: torch.nn.utils.clip_grad_norm_(params, 1e9), seconds), flush=True)


if __name__ == "__main__":
    main()
