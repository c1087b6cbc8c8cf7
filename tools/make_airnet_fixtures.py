"""Writes the fixtures of the fast CIFAR-10 recipe (L.models.AirNet, after Keller Jordan's airbench) from
PyTorch, with the lead's PyTorch implementation of the recipe (bench/airbench_torch.py) wherever it has
the piece, so that the Lua recipe is checked against the same code it is compared with:
  spec/fixtures/nn/airnet_parts.lua            the parts one by one: GELU, BatchNorm with a frozen weight
                                               (eps 1e-12, momentum 0.4) alone and followed by GELU,
                                               MaxPool2d(3) on 3x3, torch.linalg.eigh, the whitening
                                               filters of init_whitening
  spec/fixtures/nn/airnet_train_steps.safetensors
                                               a small AirNet (widths 8, 16, 16) over 10 steps of the
                                               recipe (parameter groups, Nesterov SGD, the triangular
                                               schedule, summed label-smoothed loss, Lookahead every 5
                                               steps, the whitening bias frozen after 3 "epochs" of 2
                                               steps): the first step's logits, loss and gradients, the
                                               final weights and buffers, and the final eval logits
                                               without and with test-time augmentation
Run with Debian's PyTorch: /usr/bin/python3 tools/make_airnet_fixtures.py
Tensors in the .lua file are {shape = {...}, data = {...}} (row-major), as tools/make_nn_fixtures.py
writes them."""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from make_nn_fixtures import run_layer, write  # noqa: E402
from make_model_fixtures import save_safetensors  # noqa: E402
import airbench_torch as air  # noqa: E402

OUT = os.path.join(HERE, "..", "spec", "fixtures", "nn")


def write_lua(name, cases):
    write(name, cases, tool="tools/make_airnet_fixtures.py")


def frozen_bn(c):
    """airbench's BatchNorm: scale fixed at 1 (requires_grad False), eps 1e-12, momentum 0.4."""
    bn = air.BiasOnlyBatchNorm(c, momentum=0.4)
    with torch.no_grad():
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
    return bn


def bn_case(layer, x, train, **extra):
    layer.train(train)
    bn = layer[0] if isinstance(layer, nn.Sequential) else layer
    before = {k: v.clone() for k, v in bn.named_buffers() if k != "num_batches_tracked"}
    case = run_layer(layer, x, training=train, **extra)
    for k, v in before.items():
        case["before_" + k] = v
    for k, v in bn.named_buffers():
        if k != "num_batches_tracked":
            case["after_" + k] = v
    # run_layer names parameters by the layer's names: "0.bias" inside a Sequential
    for k in list(case):
        if k.startswith("0.") or k.startswith("grad_0."):
            case[k.replace("0.", "")] = case.pop(k)
    case["weight_has_grad"] = bn.weight.grad is not None
    return {k: v for k, v in case.items() if v is not None}   # (the frozen weight has no gradient)


def eigh_case(a):
    values, vectors = torch.linalg.eigh(a.double())
    return {"input": a, "values": values, "vectors": vectors}


def smooth_images(n, c, h, w):
    """Random images with neighbouring pixels correlated (as in photographs), so that the 2x2 patch
    covariance has a spread of eigenvalues like CIFAR-10's."""
    x = torch.randn(n, c, h + 2, w + 2)
    x = F.avg_pool2d(x, 3, stride=1)
    mix = torch.tensor([[1.0, 0.6, 0.3], [0.6, 1.0, 0.6], [0.3, 0.6, 1.0]])[:c, :c]
    return torch.einsum("dc,nchw->ndhw", mix, x) * 2


def parts():
    torch.manual_seed(14)
    cases = {}
    cases["gelu"] = run_layer(nn.GELU(), torch.randn(3, 4, 5) * 2)
    cases["gelu_4d"] = run_layer(nn.GELU(), torch.randn(2, 8, 5, 5) * 2)
    x = torch.randn(4, 8, 5, 5) * 2 + 0.5
    cases["bn_frozen_train"] = bn_case(frozen_bn(8), x, True, eps=1e-12, momentum=0.4)
    cases["bn_frozen_eval"] = bn_case(frozen_bn(8), x, False, eps=1e-12, momentum=0.4)
    cases["bn_frozen_gelu_train"] = bn_case(nn.Sequential(frozen_bn(8), nn.GELU()), x, True, eps=1e-12, momentum=0.4)
    cases["bn_frozen_gelu_eval"] = bn_case(nn.Sequential(frozen_bn(8), nn.GELU()), x, False, eps=1e-12, momentum=0.4)
    cases["maxpool3_3x3"] = run_layer(nn.MaxPool2d(3), torch.randn(4, 16, 3, 3), kernel_size=3)
    a = torch.randn(12, 12, dtype=torch.float64)
    cases["eigh_12"] = eigh_case((a + a.T).float())
    cases["eigh_5_spread"] = eigh_case(torch.diag(torch.tensor([1e-4, 3.0, 0.5, 100.0, 7.0])) +
                                       0.01 * torch.ones(5, 5))
    cases["eigh_1"] = eigh_case(torch.tensor([[-2.5]]))
    images = smooth_images(24, 3, 8, 8)
    whiten = nn.Conv2d(3, 24, 2)
    air.init_whitening(whiten, images)
    c, kh, kw = 3, 2, 2
    patches = images.unfold(2, kh, 1).unfold(3, kw, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kh * kw).double()
    cov = patches.T @ patches / len(patches)
    cases["whitening"] = {"images": images, "weight": whiten.weight, "covariance": cov,
                          "eigenvalues": torch.linalg.eigh(cov)[0], "eps": 5e-4}
    write_lua("airnet_parts", cases)


def train_steps():
    """main() of bench/airbench_torch.py on one fixed batch: 5 epochs of 2 steps, 10 steps in all."""
    torch.manual_seed(15)
    batch, total_steps, steps_per_epoch, whiten_bias_epochs = 8, 10, 2, 3
    x = smooth_images(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    model = air.AirNet(widths=(8, 16, 16))
    air.init_whitening(model.whiten, x)
    tensors = {"input": x, "target": (y + 1).float()}
    for k, v in model.state_dict().items():
        tensors["init." + k] = v.clone()

    opt = air.make_optimizer(model, batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: air.lr_factor(step, total_steps))
    crit = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum")
    lookahead = air.Lookahead(model).update

    step, epoch, lrs = 0, 0, []
    model.train()
    while step < total_steps:
        model.whiten.bias.requires_grad = epoch < whiten_bias_epochs
        for _ in range(steps_per_epoch):
            logits = model(x)
            loss = crit(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if step == 0:
                tensors["step1.logits"] = logits.detach().clone()
                tensors["step1.loss"] = loss.detach().reshape(1)
                for n, p in model.named_parameters():
                    if p.grad is not None:
                        tensors["step1.grad." + n] = p.grad.clone()
            lrs.append(opt.param_groups[1]["lr"])
            opt.step()
            sched.step()
            step += 1
            if step % 5 == 0:
                lookahead(0.95 ** 5 * (step / total_steps) ** 3)
            if step >= total_steps:
                lookahead(1.0)
                break
        epoch += 1
    for k, v in model.state_dict().items():
        tensors["final." + k] = v.clone()
    tensors["lrs"] = torch.tensor(lrs)
    model.eval()
    with torch.no_grad():
        tensors["eval.logits"] = model(x)
        tensors["eval.tta_logits"] = air.tta_logits(model, x)
    meta = {"torch": torch.__version__, "batch": str(batch), "total_steps": str(total_steps),
            "steps_per_epoch": str(steps_per_epoch), "whiten_bias_epochs": str(whiten_bias_epochs),
            "widths": "8,16,16"}
    path = os.path.join(OUT, "airnet_train_steps.safetensors")
    save_safetensors(path, tensors, meta)
    print("wrote", path, len(tensors), "tensors; first loss", tensors["step1.loss"].item())


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    parts()
    train_steps()
