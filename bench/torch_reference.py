"""The PyTorch peer: BasicImageClassifier (the original project's model) in PyTorch on the CPU.
Throughput (run by bench/train_step.lua, one round of a pair), one line per measurement,
`<name> <value>` (images per second; peak_rss_mb; version):
    PYTHON bench/torch_reference.py [--threads N] [--batch B] [--size S] [--seconds T] [--precision bf16]
        [--compile]
--device cuda runs it on the GPU (eager, channels_last; bench/train_step.lua --accelerator gpu).
PYTHON is Debian's /usr/bin/python3 (PyTorch 1.13) or the peers' venv, .venv-peers/bin/python (PyTorch
2.x; bench/setup_peers.sh). --compile runs the model through torch.compile (inductor, which generates
C++ and builds it with the machine's g++; the compilation happens in the warm-up steps, untimed).
Training on CIFAR-10 for time to accuracy (bench/results.md), one line per epoch:
    /usr/bin/python3 bench/torch_reference.py --train DIR [--epochs E] [--batch B] [--lr LR] ...
    (DIR holds data_batch_1..5.bin and test_batch.bin; the recipe's options mirror examples/train.lua's)"""
import argparse
import os
import time
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicImageClassifier(nn.Module):
    def __init__(self, num_classes=10, in_ch=3, image_size=32, dropout_rate=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 32, 3, padding=1); self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1); self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1); self.bn3 = nn.BatchNorm2d(128)
        self.conv4 = nn.Conv2d(128, 256, 3, padding=1); self.bn4 = nn.BatchNorm2d(256)
        flat = 256 * (image_size // 16) ** 2
        self.fc1 = nn.Linear(flat, 512); self.bn_fc1 = nn.BatchNorm1d(512)
        self.fc2 = nn.Linear(512, 256); self.bn_fc2 = nn.BatchNorm1d(256)
        self.fc3 = nn.Linear(256, num_classes)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x):
        for c, b in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3), (self.conv4, self.bn4)):
            x = F.max_pool2d(F.relu(b(c(x))), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.bn_fc1(self.fc1(x))))
        x = self.dropout(F.relu(self.bn_fc2(self.fc2(x))))
        return self.fc3(x)


def rate(step, batch, seconds, sync=lambda: None):
    for _ in range(3):
        step()
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        sync()  # on a GPU a step has finished when its kernels have, not when they were launched
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 5:
            return n * batch / elapsed


def load_cifar(folder, train):
    """The binary batches: records of 1 label byte and 3072 pixel bytes (R, G, B planes)."""
    import numpy as np
    names = ["data_batch_%d.bin" % i for i in range(1, 6)] if train else ["test_batch.bin"]
    raw = np.concatenate([np.fromfile(os.path.join(folder, n), dtype=np.uint8).reshape(-1, 3073) for n in names])
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())
    return images, labels


MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def augment(batch, generator):
    """RandomCrop(32, padding=4) and RandomHorizontalFlip on a uint8 batch, as whole-batch tensor ops
    (the fastest way to feed PyTorch here: no worker processes competing for the 2 cores)."""
    n = batch.shape[0]
    padded = F.pad(batch, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(32).view(1, 32))
    cols = (dx.view(n, 1) + torch.arange(32).view(1, 32))
    out = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(3).view(1, 3, 1, 1), rows.view(n, 1, 32, 1),
                 cols.view(n, 1, 1, 32)]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def normalize(batch):
    return (batch.float() / 255.0 - MEAN) / STD


def train(a):
    """Trains with the recipe of examples/train.lua's options and prints the accuracy on the held-out part
    of the training data and on the test set after every epoch, with the elapsed wall time (training
    time only: evaluation is excluded from the clock)."""
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    x_train, y_train = load_cifar(a.train, True)
    x_test, y_test = load_cifar(a.train, False)
    n_train = int(len(x_train) * a.val_split)
    x_val, y_val = x_train[n_train:], y_train[n_train:]      # held out, as the Lua run's validation split
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    model = BasicImageClassifier(dropout_rate=a.dropout)
    bf16 = a.precision == "bf16"
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if a.compile else model   # (compiled in the first steps; their time counts)
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.nesterov,
                              weight_decay=a.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    steps = a.epochs * (n_train // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps) if a.scheduler == "onecycle" else None
    crit = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    elapsed = 0.0
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n_train, generator=gen)
        total, count = 0.0, 0
        for i in range(n_train // a.batch):
            idx = order[i * a.batch:(i + 1) * a.batch]
            x = normalize(augment(x_train[idx], gen))
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = net(x)
            loss = crit(out.float(), y_train[idx])
            loss.backward()
            opt.step()
            if sched:
                sched.step()
            total += loss.item() * len(idx)
            count += len(idx)
        elapsed += time.perf_counter() - t0
        model.eval()
        print("epoch %d time %.1f train_loss %.4f val_acc %.4f test_acc %.4f" % (
            epoch, elapsed, total / count, accuracy(net, x_val, y_val, bf16), accuracy(net, x_test, y_test, bf16)),
            flush=True)


def accuracy(model, x, y, bf16=False):
    if len(x) == 0:
        return float("nan")
    correct = 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(x), 500):
            xb = normalize(x[i:i + 500])
            if bf16:
                xb = xb.contiguous(memory_format=torch.channels_last)
            correct += (model(xb).float().argmax(1) == y[i:i + 500]).sum().item()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--train", metavar="DIR", help="train on the CIFAR-10 binary batches in DIR")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--nesterov", action="store_true", help="Nesterov momentum (train.lua's sgd has none)")
    ap.add_argument("--weight_decay", type=float, default=5e-4)
    ap.add_argument("--scheduler", choices=["onecycle", "none"], default="onecycle")
    ap.add_argument("--label_smoothing", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--val_split", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch 2.x; inductor)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) with channels_last, PyTorch's fastest CPU mode")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: the GPU, eager with channels_last in both precisions (TF32 allowed in convolutions, "
                         "as PyTorch's default, and in matrix products, as lightning's)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.train:
        train(a)
        return
    torch.manual_seed(0)
    bf16 = a.precision == "bf16"
    dev = torch.device(a.device)
    gpu = a.device == "cuda"
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    model = BasicImageClassifier(image_size=a.size).to(dev)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    if bf16 or gpu:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (a.batch,), device=dev)
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    run = model
    if a.compile:
        run = torch.compile(model)

    def autocast():
        return torch.autocast(a.device, dtype=torch.bfloat16, enabled=bf16)

    def train_step():
        opt.zero_grad()
        with autocast():
            out = run(x)
        loss = crit(out.float(), y)
        loss.backward()
        opt.step()

    def eval_step():
        with autocast():
            run(x)

    model.train()
    print("train", rate(train_step, a.batch, a.seconds, sync), flush=True)
    model.eval()
    with torch.no_grad():
        print("eval", rate(eval_step, a.batch, a.seconds, sync), flush=True)
    if gpu:
        print("peak_gpu_mb", torch.cuda.max_memory_allocated() / 2 ** 20, flush=True)
        print("gpu", torch.cuda.get_device_name().replace(" ", "_"), flush=True)
    elif bf16:  # the machine's bf16 matrix-product rate (oneDNN under PyTorch), for the GFLOP/s comparison
        m = torch.randn(1024, 1024).bfloat16()
        mm = rate(lambda: torch.mm(m, m), 1, 1.0)
        print("bf16_mm_gflops", mm * 2 * 1024 ** 3 / 1e9, flush=True)
    import resource
    print("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, flush=True)
    print("version", torch.__version__.split("+")[0], flush=True)


if __name__ == "__main__":
    main()
