"""The fast CIFAR-10 recipe of lightning's model zoo (L.models.AirNet, recipe "airbench94") in PyTorch, as
the peer of `lua examples/train.lua --recipe airbench94`: the same network, initialisation, optimiser,
schedule, weight averaging, augmentation and test-time augmentation, after Keller Jordan's paper
"94% on CIFAR-10 in 3.29 seconds on a single GPU" (arXiv 2404.00498).

  /usr/bin/python3 bench/airbench_torch.py --data ../shared/data/cifar-10-batches-bin \
      [--precision bf16|fp32] [--epochs 9.9] [--seed 0] [--threads 2] [--steps N] [--compile]

Prints one line per epoch (wall time since the start, including the whitening initialisation and
evaluation, and the plain test accuracy) and the final test accuracy with flip + translate test-time
augmentation. --steps N only times N training steps after 3 untimed ones and prints "name value" lines
(train: images/s, peak_rss_mb, version), as bench/paired.lua reads them (bench/airnet_step.lua).
--compile runs the network through torch.compile (inductor; PyTorch 2.x), in training and in the test;
its compilation happens in the first steps (and again when the whitening bias stops learning).
"""
import argparse
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def load_cifar(folder, train):
    import numpy as np
    names = ["data_batch_%d.bin" % i for i in range(1, 6)] if train else ["test_batch.bin"]
    raw = np.concatenate([np.fromfile(os.path.join(folder, n), dtype=np.uint8).reshape(-1, 3073) for n in names])
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div_(255)
    return (images - MEAN) / STD, labels


class BiasOnlyBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose scale stays 1 (only the shift learns); eps 1e-12 as in the paper."""

    def __init__(self, c, momentum):
        super().__init__(c, eps=1e-12, momentum=momentum)
        self.weight.requires_grad = False


def conv(cin, cout, k=3, padding=1, bias=False):
    c = nn.Conv2d(cin, cout, k, padding=padding, bias=bias)
    with torch.no_grad():
        torch.nn.init.dirac_(c.weight[:cin])   # the first cin filters pass their input through
    return c


class Block(nn.Module):
    def __init__(self, cin, cout, momentum):
        super().__init__()
        self.conv1, self.norm1 = conv(cin, cout), BiasOnlyBatchNorm(cout, momentum)
        self.conv2, self.norm2 = conv(cout, cout), BiasOnlyBatchNorm(cout, momentum)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class AirNet(nn.Module):
    def __init__(self, widths=(64, 256, 256), bn_momentum=0.4):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad = False
        self.block1 = Block(24, widths[0], bn_momentum)
        self.block2 = Block(widths[0], widths[1], bn_momentum)
        self.block3 = Block(widths[1], widths[2], bn_momentum)
        self.fc = nn.Linear(widths[2], 10, bias=False)

    def forward(self, x):
        x = F.gelu(self.whiten(x))
        x = self.block3(self.block2(self.block1(x)))
        x = F.max_pool2d(x, 3).flatten(1)
        return self.fc(x) / 9


def init_whitening(layer, images, eps=5e-4):
    """Weights from the eigenvectors of the covariance of the 2x2 patches of the images, scaled by
    1/sqrt(eigenvalue + eps), and their negatives."""
    c, kh, kw = 3, 2, 2
    patches = images.unfold(2, kh, 1).unfold(3, kw, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kh * kw).double()
    cov = patches.T @ patches / len(patches)
    values, vectors = torch.linalg.eigh(cov)
    values, vectors = values.flip(0), vectors.T.flip(0)
    w = (vectors / torch.sqrt(values + eps).view(-1, 1)).view(-1, c, kh, kw).float()
    with torch.no_grad():
        layer.weight.copy_(torch.cat([w, -w]))
        layer.bias.zero_()


def make_optimizer(model, batch, momentum=0.85):
    """The paper's hyperparameters in its decoupled form: lr 11.5 and weight decay 0.0153 per 1024
    examples, momentum 0.85 (Nesterov), BatchNorm biases at 64x the learning rate, summed loss."""
    scale = 1024 * (1 + 1 / (1 - momentum))
    lr, wd = 11.5 / scale, 0.0153 * batch / scale
    lr_bias = lr * 64
    norm_biases = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
    others = [p for n, p in model.named_parameters() if "norm" not in n and p.requires_grad]
    return torch.optim.SGD([{"params": norm_biases, "lr": lr_bias, "weight_decay": wd / lr_bias},
                            {"params": others, "lr": lr, "weight_decay": wd / lr}],
                           momentum=momentum, nesterov=True)


def lr_factor(step, total_steps):
    """Triangular: 0.2 -> 1 over the first 23 %, then down to 0.07."""
    warm = int(total_steps * 0.23)
    if step < warm:
        return 0.2 + 0.8 * step / warm
    return 1.0 + (0.07 - 1.0) * (step - warm) / (total_steps - warm)


class Lookahead:
    """Lookahead-style averaging: every 5 steps the weights move to an average that trails them by a
    decay growing as (step / total)^3 up to 0.95^5; the last step takes the average (decay 1)."""

    def __init__(self, model):
        self.model = model
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def update(self, decay):
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if k in self.ema:
                    self.ema[k].lerp_(v, 1 - decay)
                    v.copy_(self.ema[k])


def translate_batch(padded, pad, gen):
    """Random crops of 32x32 out of images padded by `pad` on each side (reflection)."""
    n = padded.shape[0]
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(padded.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(padded.device)
    out = torch.empty(n, 3, 32, 32, device=padded.device)
    for sy in range(2 * pad + 1):
        for sx in range(2 * pad + 1):
            m = (dy == sy) & (dx == sx)
            out[m] = padded[m, :, sy:sy + 32, sx:sx + 32]
    return out


def tta_logits(net, xb):
    """Flip + translate test-time augmentation (airbench's level 2): half the mean of the batch and its
    mirror image, a quarter each the same for the batch shifted by one pixel either way (reflection)."""
    def mirror(v):
        return 0.5 * net(v).float() + 0.5 * net(v.flip(-1)).float()
    padded = F.pad(xb, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * mirror(padded[:, :, 0:32, 0:32]) + 0.5 * mirror(padded[:, :, 2:34, 2:34])
    return 0.5 * mirror(xb) + 0.5 * shifted


def evaluate(model, x, y, tta, autocast, net=None):
    net = net or model
    model.eval()
    correct = 0
    with torch.no_grad(), autocast():
        for i in range(0, len(x), 1000):
            xb = x[i:i + 1000].contiguous(memory_format=torch.channels_last)
            logits = tta_logits(net, xb) if tta else net(xb).float()
            correct += (logits.argmax(1) == y[i:i + 1000]).sum().item()
    model.train()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the folder of CIFAR-10's binary batches")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--epochs", type=float, default=9.9)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="run this many training steps, timing all but the first 3")
    ap.add_argument("--compile", action="store_true", help="torch.compile the network (PyTorch 2.x; inductor)")
    ap.add_argument("--eval_every_epoch", action="store_true", help="also print the plain test accuracy "
                    "after every epoch (its time counts)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: the data set and the network on the GPU, as airbench runs (the GPU check)")
    a = ap.parse_args()
    device = torch.device(a.device)

    def sync():  # a GPU's queued work finished, before a clock is read
        if a.device == "cuda":
            torch.cuda.synchronize()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    def autocast():
        return torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    x_train, y_train = (t.to(device) for t in load_cifar(a.data, True))
    x_test, y_test = (t.to(device) for t in load_cifar(a.data, False))
    sync()
    t_start = time.perf_counter()

    model = AirNet().to(device, memory_format=torch.channels_last)
    init_whitening(model.whiten, x_train[:5000])
    net = torch.compile(model) if a.compile else model
    opt = make_optimizer(model, a.batch)
    steps_per_epoch = len(x_train) // a.batch
    total_steps = math.ceil(steps_per_epoch * a.epochs) if not a.steps else a.steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total_steps))
    crit = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum")
    lookahead = Lookahead(model).update

    # Alternating flip: each image is flipped at random once, then the whole set is flipped every
    # other epoch; translation by up to 2 pixels with reflection padding.
    flip = (torch.rand(len(x_train), generator=gen) < 0.5).to(device)
    base = torch.where(flip.view(-1, 1, 1, 1), x_train.flip(-1), x_train)
    padded_base = F.pad(base, (2, 2, 2, 2), mode="reflect")

    step, epoch = 0, 0
    t_steps = None
    while step < total_steps:
        model.whiten.bias.requires_grad = epoch < 3
        padded = padded_base.flip(-1) if epoch % 2 == 1 else padded_base
        order = torch.randperm(len(x_train), generator=gen).to(device)
        for i in range(steps_per_epoch):
            if a.steps and step == 3:
                sync()
                t_steps = time.perf_counter()
            idx = order[i * a.batch:(i + 1) * a.batch]
            x = translate_batch(padded[idx], 2, gen).contiguous(memory_format=torch.channels_last)
            with autocast():
                loss = crit(net(x).float(), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 5 == 0:
                lookahead(0.95 ** 5 * (step / total_steps) ** 3)
            if step >= total_steps:
                lookahead(1.0)
                break
        epoch += 1
        if a.steps:
            sync()
            dt = time.perf_counter() - t_steps
            print("train %.1f\npeak_rss_mb %.0f\nversion %s" % ((step - 3) * a.batch / dt,
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, torch.__version__.split("+")[0]), flush=True)
            if a.device == "cuda":
                print("peak_gpu_mb %.0f" % (torch.cuda.max_memory_allocated() / 2 ** 20), flush=True)
            return
        acc = evaluate(model, x_test, y_test, False, autocast, net) if a.eval_every_epoch else float("nan")
        print("epoch %d time %.1f loss %.4f test_acc %.4f" % (
            epoch, time.perf_counter() - t_start, loss.item() / a.batch, acc), flush=True)
    acc = evaluate(model, x_test, y_test, True, autocast, net)
    print("final time %.1f tta_test_acc %.4f seed %d precision %s" % (
        time.perf_counter() - t_start, acc, a.seed, a.precision), flush=True)


if __name__ == "__main__":
    main()
