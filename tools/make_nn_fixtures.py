"""Writes spec/fixtures/nn/*.lua: forward outputs and gradients of PyTorch's layers and losses on small
inputs, for the specs to compare against (they need no PyTorch). Run with Debian's PyTorch:
    /usr/bin/python3 tools/make_nn_fixtures.py
Each case holds tensors as {shape = {...}, data = {...}} (row-major); class targets are 1-based."""
import os
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "spec", "fixtures", "nn")
torch.manual_seed(0)


def lua_tensor(t):
    t = t.detach().contiguous().float()
    shape = ", ".join(str(s) for s in t.shape) if t.dim() else "1"
    data = ", ".join("%.9g" % v for v in t.reshape(-1).tolist())
    return "{shape = {%s}, data = {%s}}" % (shape, data)


def lua_value(v):
    if isinstance(v, torch.Tensor):
        return lua_tensor(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return "%.17g" % v
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (k, lua_value(x)) for k, x in v.items()) + "}"
    raise TypeError(type(v))


def write(name, cases, tool="tools/make_nn_fixtures.py"):
    path = os.path.join(OUT, name + ".lua")
    with open(path, "w") as f:
        f.write("-- written by %s with PyTorch %s; do not edit\nreturn {\n" % (tool, torch.__version__))
        for case_name, case in cases.items():
            f.write("  %s = %s,\n" % (case_name, lua_value(case)))
        f.write("}\n")


def run_layer(layer, x, **extra):
    """Forward, then backward of a random grad_output; returns output, grads of input and parameters."""
    x = x.clone().requires_grad_(True)
    y = layer(x)
    g = torch.randn_like(y)
    y.backward(g)
    case = dict(extra)
    case.update(input=x, output=y, grad_output=g, grad_input=x.grad)
    for pname, p in layer.named_parameters():
        case[pname] = p
        case["grad_" + pname] = p.grad
    return case


def conv_cases():
    cases = {}
    specs = {
        "basic": (2, 3, 7, 7, 4, 3, 1, 1, True),
        "stride2_pad0_one_channel": (1, 1, 9, 8, 2, 3, 2, 0, True),
        "stride2_pad2_odd": (3, 3, 6, 5, 5, 3, 2, 2, True),
        "rect_kernel": (2, 2, 6, 7, 3, (2, 3), (2, 1), (1, 0), True),
        "no_bias_batch1": (1, 3, 5, 5, 2, 3, 1, 1, False),
        "kernel1": (2, 4, 3, 3, 3, 1, 1, 0, True),
    }
    for name, (n, cin, h, w, cout, k, s, p, bias) in specs.items():
        layer = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias)
        cases[name] = run_layer(layer, torch.randn(n, cin, h, w), in_channels=cin, out_channels=cout,
                                kernel_size=list(k) if isinstance(k, tuple) else k,
                                stride=list(s) if isinstance(s, tuple) else s,
                                padding=list(p) if isinstance(p, tuple) else p, bias=bias)
    write("conv2d", cases)


def linear_cases():
    cases = {}
    for name, (b, i, o, bias) in {"basic": (4, 5, 3, True), "batch1": (1, 1, 2, True), "no_bias": (3, 6, 4, False)}.items():
        layer = nn.Linear(i, o, bias=bias)
        cases[name] = run_layer(layer, torch.randn(b, i), in_features=i, out_features=o, bias=bias)
    write("linear", cases)


def batchnorm_cases():
    cases = {}

    def bn_case(layer, x, train, steps=1, **extra):
        # a few forward passes in training mode to move the running statistics, then the checked pass
        layer.train(train)
        with torch.no_grad():
            for _ in range(steps - 1):
                layer.train(True)
                layer(x * 1.5 + 0.3)
            layer.train(train)
        before = {k: v.clone() for k, v in layer.named_buffers() if k != "num_batches_tracked"}
        case = run_layer(layer, x, training=train, **extra)
        for k, v in before.items():
            case["before_" + k] = v
        for k, v in layer.named_buffers():
            case["after_" + k] = v.float() if k != "num_batches_tracked" else float(v)
        case["warmup_steps"] = steps - 1
        return case

    def affine(layer):
        with torch.no_grad():
            if layer.weight is not None:
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.5, 0.5)
        return layer

    cases["bn2d_train"] = bn_case(affine(nn.BatchNorm2d(4)), torch.randn(3, 4, 5, 5) * 2 + 1, True, num_features=4, dims=2)
    cases["bn2d_eval"] = bn_case(affine(nn.BatchNorm2d(4)), torch.randn(2, 4, 3, 3), False, steps=3, num_features=4, dims=2)
    cases["bn2d_no_affine"] = bn_case(nn.BatchNorm2d(3, affine=False), torch.randn(2, 3, 4, 4), True, num_features=3,
                                      dims=2, affine=False)
    cases["bn2d_cumulative"] = bn_case(affine(nn.BatchNorm2d(2, momentum=None)), torch.randn(4, 2, 3, 3), True, steps=3,
                                       num_features=2, dims=2, momentum=False)
    cases["bn2d_batch1"] = bn_case(affine(nn.BatchNorm2d(3)), torch.randn(1, 3, 4, 4), True, num_features=3, dims=2)
    cases["bn1d_train"] = bn_case(affine(nn.BatchNorm1d(4)), torch.randn(6, 4) * 3 - 2, True, num_features=4, dims=1)
    cases["bn1d_eval"] = bn_case(affine(nn.BatchNorm1d(4)), torch.randn(6, 4), False, steps=2, num_features=4, dims=1)
    cases["bn1d_3d"] = bn_case(affine(nn.BatchNorm1d(3)), torch.randn(2, 3, 5), True, num_features=3, dims=1)
    cases["bn2d_no_tracking_eval"] = bn_case(affine(nn.BatchNorm2d(2, track_running_stats=False)),
                                             torch.randn(3, 2, 2, 2), False, num_features=2, dims=2,
                                             track_running_stats=False)
    write("batchnorm", cases)


def activation_cases():
    x = torch.randn(3, 4, 5)
    write("activation", {
        "relu": run_layer(nn.ReLU(), x),
        "leaky_relu": run_layer(nn.LeakyReLU(0.2), x, negative_slope=0.2),
        "leaky_relu_default": run_layer(nn.LeakyReLU(), x[0], negative_slope=0.01),
    })


def pool_cases():
    cases = {}
    x = torch.randn(2, 3, 7, 6)
    cases["max_k2"] = run_layer(nn.MaxPool2d(2), x, kind="max", kernel_size=2)
    cases["max_k3_s2_p1"] = run_layer(nn.MaxPool2d(3, 2, 1), x, kind="max", kernel_size=3, stride=2, padding=1)
    cases["max_rect_s1"] = run_layer(nn.MaxPool2d((2, 3), 1), x, kind="max", kernel_size=[2, 3], stride=1)
    cases["avg_k2"] = run_layer(nn.AvgPool2d(2), x, kind="avg", kernel_size=2)
    cases["avg_k3_s2_p1"] = run_layer(nn.AvgPool2d(3, 2, 1), x, kind="avg", kernel_size=3, stride=2, padding=1)
    cases["avg_k3_s2_p1_exclude"] = run_layer(nn.AvgPool2d(3, 2, 1, count_include_pad=False), x, kind="avg",
                                              kernel_size=3, stride=2, padding=1, count_include_pad=False)
    cases["adaptive_3x2"] = run_layer(nn.AdaptiveAvgPool2d((3, 2)), x, kind="adaptive", output_size=[3, 2])
    cases["adaptive_1"] = run_layer(nn.AdaptiveAvgPool2d(1), x, kind="adaptive", output_size=1)
    cases["adaptive_up"] = run_layer(nn.AdaptiveAvgPool2d((9, 8)), x, kind="adaptive", output_size=[9, 8])
    write("pool", cases)


def softmax_cases():
    x = torch.randn(3, 4, 5) * 3
    write("softmax", {
        "softmax_last": run_layer(nn.Softmax(dim=-1), x, log=False, dim=3),
        "softmax_dim2": run_layer(nn.Softmax(dim=1), x, log=False, dim=2),
        "log_softmax_last": run_layer(nn.LogSoftmax(dim=-1), x, log=True, dim=3),
        "log_softmax_dim1": run_layer(nn.LogSoftmax(dim=0), x, log=True, dim=1),
        "log_softmax_large": run_layer(nn.LogSoftmax(dim=1), torch.tensor([[1e4, 0.0, -1e4], [50.0, 51.0, 52.0]]),
                                       log=True, dim=2),
    })


def loss_cases():
    cases = {}

    def ce(name, logits, target, **kw):
        x = logits.clone().requires_grad_(True)
        crit = nn.CrossEntropyLoss(**kw)
        loss = crit(x, target)
        g = torch.randn_like(loss) if loss.dim() else torch.tensor(1.0)
        loss.backward(g)
        opts = {k: v for k, v in kw.items() if k != "ignore_index"}
        if "ignore_index" in kw:
            opts["ignore_index"] = kw["ignore_index"] + 1
        cases[name] = dict(kind="cross_entropy", options=opts, input=x, target=(target + 1).float(), loss=loss,
                           grad_output=g, grad_input=x.grad)

    logits = torch.randn(5, 4) * 2
    target = torch.tensor([0, 3, 1, 1, 2])
    w = torch.tensor([0.5, 2.0, 1.0, 3.0])
    ce("ce_mean", logits, target)
    ce("ce_sum", logits, target, reduction="sum")
    ce("ce_none", logits, target, reduction="none")
    ce("ce_weight", logits, target, weight=w)
    ce("ce_smoothing", logits, target, label_smoothing=0.1)
    ce("ce_weight_smoothing", logits, target, weight=w, label_smoothing=0.2)
    ce("ce_ignore", logits, torch.tensor([0, 3, 2, 1, 2]), ignore_index=2)
    ce("ce_ignore_smoothing", logits, torch.tensor([0, 3, 2, 1, 2]), ignore_index=2, label_smoothing=0.3)
    ce("ce_large_logits", torch.tensor([[1e4, 0.0, -1e4], [-3e4, 3e4, 0.0]]), torch.tensor([2, 1]))
    ce("ce_batch1", torch.randn(1, 10), torch.tensor([7]))

    def nll(name, logp, target, **kw):
        x = logp.clone().requires_grad_(True)
        loss = nn.NLLLoss(**kw)(x, target)
        g = torch.randn_like(loss) if loss.dim() else torch.tensor(1.0)
        loss.backward(g)
        cases[name] = dict(kind="nll", options=kw, input=x, target=(target + 1).float(), loss=loss, grad_output=g,
                           grad_input=x.grad)

    logp = F.log_softmax(torch.randn(5, 4), 1)
    nll("nll_mean", logp, target)
    nll("nll_weight_sum", logp, target, weight=w, reduction="sum")
    nll("nll_weight_mean", logp, target, weight=w)

    def mse(name, a, b, **kw):
        x = a.clone().requires_grad_(True)
        loss = nn.MSELoss(**kw)(x, b)
        g = torch.randn_like(loss) if loss.dim() else torch.tensor(1.0)
        loss.backward(g)
        cases[name] = dict(kind="mse", options=kw, input=x, target=b, loss=loss, grad_output=g, grad_input=x.grad)

    mse("mse_mean", torch.randn(3, 4), torch.randn(3, 4))
    mse("mse_sum", torch.randn(2, 3, 2), torch.randn(2, 3, 2), reduction="sum")
    mse("mse_none", torch.randn(5), torch.randn(5), reduction="none")
    write("loss", cases)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    conv_cases()
    linear_cases()
    batchnorm_cases()
    activation_cases()
    pool_cases()
    softmax_cases()
    loss_cases()
    print("wrote", sorted(os.listdir(OUT)))
