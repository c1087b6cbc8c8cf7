#!/usr/bin/python3
"""Writes the reference values that spec/optim_*_spec.lua check lightning.optim against, computed by
PyTorch (Debian's python3-torch, 1.13): run it as

    /usr/bin/python3 tools/make_optim_fixtures.py

It writes Lua files returning tables of numbers to spec/fixtures/optim/:
  optimizers.lua  parameters of three shapes, K steps of fixed gradients, and for every optimizer case
                  the parameters after each step and the state after the last one
  schedulers.lua  the learning rates (and OneCycleLR's momentum) of every scheduler case, per group,
                  after construction and after each step
  clip.lua        gradients before and after clip_grad_norm_ / clip_grad_value_, and the total norms
Float32 values are written with 9 significant digits (exact), doubles as Python writes them (exact).
"""
import math
import os
import warnings

import torch

# SequentialLR steps its schedulers with an epoch, which PyTorch 1.13 reports as deprecated.
warnings.filterwarnings("ignore", category=UserWarning, module="torch.optim.lr_scheduler")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "fixtures", "optim")
SHAPES = [(5,), (3, 4), (2, 3, 3, 3)]
STEPS = 5


class F32(list):
    """A list of float32 values (formatted with 9 digits)."""


def flat(t):
    return F32(float(x) for x in t.detach().reshape(-1).tolist())


def lua(v, indent=""):
    """Lua source for a Python value (dicts with string or int keys, lists, numbers, bools)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "math.huge" if v > 0 else "-math.huge"
        return repr(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, F32):
        return "{" + ", ".join("%.9g" % x for x in v) + "}"
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return "{" + ", ".join(lua(x) for x in v) + "}"
        inner = indent + "  "
        return "{\n" + "".join(inner + lua(x, inner) + ",\n" for x in v) + indent + "}"
    if isinstance(v, dict):
        inner = indent + "  "
        parts = []
        for k, x in v.items():
            if x is None:
                continue
            key = k if isinstance(k, str) and k.isidentifier() else "[%s]" % lua(k)
            parts.append(inner + key + " = " + lua(x, inner) + ",\n")
        return "{\n" + "".join(parts) + indent + "}"
    raise TypeError(type(v))


def write(name, comment, value):
    path = os.path.join(OUT, name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("-- %s\n-- Written by tools/make_optim_fixtures.py with PyTorch %s; do not edit.\n" % (comment, torch.__version__))
        f.write("return " + lua(value) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---- optimizers ----

OPTIMIZER_CASES = [
    # name, class, options, extras: groups (0-based param lists with options), lr_at (step -> group lrs set
    # before that step), skip (step -> 0-based params without a gradient at that step)
    ("sgd", "SGD", {"lr": 0.1}, {}),
    ("sgd_momentum", "SGD", {"lr": 0.1, "momentum": 0.9}, {}),
    ("sgd_dampening", "SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}, {}),
    ("sgd_nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, {}),
    ("sgd_nesterov_wd", "SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True}, {}),
    ("sgd_wd_maximize", "SGD", {"lr": 0.1, "weight_decay": 0.1, "maximize": True}, {}),
    ("sgd_all", "SGD", {"lr": 0.1, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.05, "maximize": True}, {}),
    ("adam_default", "Adam", {}, {}),
    ("adam", "Adam", {"lr": 0.01}, {}),
    ("adam_wd", "Adam", {"lr": 0.01, "weight_decay": 0.1}, {}),
    ("adam_amsgrad", "Adam", {"lr": 0.01, "amsgrad": True}, {}),
    ("adam_betas_eps_maximize", "Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}, {}),
    ("adam_all", "Adam", {"lr": 0.02, "amsgrad": True, "weight_decay": 0.05, "maximize": True}, {}),
    ("adamw_default", "AdamW", {}, {}),
    ("adamw", "AdamW", {"lr": 0.01}, {}),
    ("adamw_amsgrad_wd", "AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}, {}),
    ("adamw_betas_maximize", "AdamW", {"lr": 0.01, "betas": (0.5, 0.9), "maximize": True, "weight_decay": 0.0}, {}),
    ("adam_groups", "Adam", {"lr": 0.01},
     {"groups": [{"params": [0], "lr": 0.1}, {"params": [1, 2], "weight_decay": 0.1, "amsgrad": True}]}),
    ("sgd_groups", "SGD", {"lr": 0.1, "momentum": 0.9},
     {"groups": [{"params": [0, 2], "lr": 0.01, "nesterov": True}, {"params": [1], "dampening": 0.3}]}),
    ("sgd_lr_change", "SGD", {"lr": 0.1, "momentum": 0.9}, {"lr_at": {3: [0.01]}}),
    ("adam_lr_change", "Adam", {"lr": 0.01},
     {"groups": [{"params": [0]}, {"params": [1, 2], "lr": 0.02}], "lr_at": {2: [0.005, 0.1], 4: [0.05, 0.0]}}),
    ("adam_skip", "Adam", {"lr": 0.01}, {"skip": {2: [1], 4: [1, 2]}}),
    ("sgd_skip", "SGD", {"lr": 0.1, "momentum": 0.9}, {"skip": {1: [0], 3: [2]}}),
]


def make_optimizer_fixtures():
    torch.manual_seed(0)
    init = [torch.randn(s) for s in SHAPES]
    grads = [[torch.randn(s) * (0.5 + k) for s in SHAPES] for k in range(STEPS)]
    cases = []
    for name, cls_name, options, extras in OPTIMIZER_CASES:
        params = [t.clone().requires_grad_(True) for t in init]
        cls = getattr(torch.optim, cls_name)
        if "groups" in extras:
            groups = [dict(g, params=[params[i] for i in g["params"]]) for g in extras["groups"]]
            opt = cls(groups, **options)
        else:
            opt = cls(params, **options)
        after = []
        for k in range(1, STEPS + 1):
            for gi, lr in enumerate(extras.get("lr_at", {}).get(k, [])):
                opt.param_groups[gi]["lr"] = lr
            skipped = extras.get("skip", {}).get(k, [])
            for i, p in enumerate(params):
                p.grad = None if i in skipped else grads[k - 1][i].clone()
            opt.step()
            after.append([flat(p) for p in params])
        state = {}  # keyed as PyTorch's state_dict keys it (parameters in group order), 1-based
        for index, s in opt.state_dict()["state"].items():
            entry = {}
            for key, value in s.items():
                if value is None:
                    continue
                entry[key] = int(value.item()) if key == "step" else flat(value)
            if entry:
                state[index + 1] = entry
        case = {"name": name, "optimizer": cls_name, "options": options, "params": after, "state": state}
        if "groups" in extras:
            case["groups"] = [dict(g, params=[i + 1 for i in g["params"]]) for g in extras["groups"]]
        if "lr_at" in extras:
            case["lr_at"] = {k: v for k, v in extras["lr_at"].items()}
        if "skip" in extras:
            case["skip"] = {k: [i + 1 for i in v] for k, v in extras["skip"].items()}
        cases.append(case)
    write("optimizers.lua", "Optimizer steps: parameters after each of %d steps of fixed gradients." % STEPS, {
        "shapes": [list(s) for s in SHAPES],
        "init": [flat(t) for t in init],
        "grads": [[flat(g) for g in step] for step in grads],
        "cases": cases,
    })


# ---- schedulers ----

S = torch.optim.lr_scheduler


def scheduler_cases():
    """name, optimizer kind, group lrs, builder(opt) -> scheduler, number of steps, metrics or None."""
    plateau_metrics = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.41, 0.42, 0.43,
                       0.44, 0.45, 0.46, 0.47, 0.48, 0.3, 0.31, 0.32, 0.33, 0.34]
    return [
        ("step_lr", {"StepLR": {"step_size": 3, "gamma": 0.5}}, 25),
        ("multi_step_lr", {"MultiStepLR": {"milestones": [3, 7, 7, 12], "gamma": 0.1}}, 25),
        ("exponential_lr", {"ExponentialLR": {"gamma": 0.9}}, 25),
        ("cosine_annealing_lr", {"CosineAnnealingLR": {"T_max": 10, "eta_min": 0.001}}, 30),
        ("cosine_annealing_lr_zero_min", {"CosineAnnealingLR": {"T_max": 7}}, 25),
        ("linear_lr", {"LinearLR": {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 5}}, 25),
        ("linear_lr_decay", {"LinearLR": {"start_factor": 1.0, "end_factor": 0.2, "total_iters": 8}}, 25),
        ("constant_lr", {"ConstantLR": {"factor": 0.5, "total_iters": 4}}, 25),
        ("polynomial_lr", {"PolynomialLR": {"total_iters": 6, "power": 2.0}}, 25),
        ("lambda_lr", {"LambdaLR": {"lr_lambda": "0.95^epoch"}}, 25),
        ("warmup_cosine", {"SequentialLR": {
            "schedulers": [{"LinearLR": {"start_factor": 0.01, "total_iters": 5}},
                           {"CosineAnnealingLR": {"T_max": 15, "eta_min": 0.0001}}],
            "milestones": [5]}}, 25),
        ("warmup_step", {"SequentialLR": {
            "schedulers": [{"ConstantLR": {"factor": 0.1, "total_iters": 2}},
                           {"ExponentialLR": {"gamma": 0.9}},
                           {"StepLR": {"step_size": 4, "gamma": 0.5}}],
            "milestones": [2, 10]}}, 25),
        ("chained", {"ChainedScheduler": {
            "schedulers": [{"ConstantLR": {"factor": 0.5, "total_iters": 3}}, {"ExponentialLR": {"gamma": 0.9}}]}}, 25),
        ("plateau_min_rel", {"ReduceLROnPlateau": {"patience": 2, "cooldown": 1}}, 25, plateau_metrics),
        ("plateau_max_abs", {"ReduceLROnPlateau": {"mode": "max", "threshold_mode": "abs", "threshold": 0.1,
                                                   "patience": 1, "factor": 0.5, "min_lr": 0.002}},
         25, [-m for m in plateau_metrics]),
        ("plateau_min_lrs_eps", {"ReduceLROnPlateau": {"factor": 0.2, "patience": 0, "min_lr": [0.01, 0.0],
                                                       "eps": 0.02}}, 25, plateau_metrics),
        ("one_cycle_sgd", {"OneCycleLR": {"max_lr": 0.1, "total_steps": 25}}, 24),
        ("one_cycle_adam_three_phase", {"OneCycleLR": {"max_lr": [0.1, 0.05], "epochs": 5, "steps_per_epoch": 5,
                                                       "pct_start": 0.25, "anneal_strategy": "linear",
                                                       "div_factor": 10.0, "final_div_factor": 100.0,
                                                       "three_phase": True}}, 25, None, "Adam"),
        ("one_cycle_no_momentum", {"OneCycleLR": {"max_lr": 0.2, "total_steps": 20, "pct_start": 0.4,
                                                  "cycle_momentum": False}}, 20),
    ]


def build(spec, opt):
    (kind, options), = spec.items()
    options = dict(options)
    if kind in ("SequentialLR", "ChainedScheduler"):
        subs = [build(s, opt) for s in options.pop("schedulers")]
        return S.SequentialLR(opt, subs, **options) if kind == "SequentialLR" else S.ChainedScheduler(subs)
    if kind == "LambdaLR":
        options["lr_lambda"] = lambda epoch: 0.95 ** epoch
    return getattr(S, kind)(opt, **options)


def make_scheduler_fixtures():
    cases = []
    for entry in scheduler_cases():
        name, spec, steps = entry[:3]
        metrics = entry[3] if len(entry) > 3 else None
        opt_kind = entry[4] if len(entry) > 4 else "SGD"
        p = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
        groups = [{"params": [p[0]], "lr": 0.1}, {"params": [p[1]], "lr": 0.05}]
        opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9) if opt_kind == "SGD" else torch.optim.Adam(groups)
        sched = build(spec, opt)
        lrs = [[g["lr"] for g in opt.param_groups]]
        momentum = [[g["momentum"] if opt_kind == "SGD" else g["betas"][0] for g in opt.param_groups]]
        for k in range(steps):
            opt.step()  # no gradients: nothing changes, but PyTorch wants the optimizer stepped first
            if metrics is not None:
                sched.step(metrics[k])
            else:
                sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
            momentum.append([g["momentum"] if opt_kind == "SGD" else g["betas"][0] for g in opt.param_groups])
        case = {"name": name, "scheduler": spec, "optimizer": opt_kind, "group_lrs": [0.1, 0.05], "steps": steps,
                "lrs": lrs}
        if metrics is not None:
            case["metrics"] = metrics[:steps]
        if "OneCycleLR" in spec:
            case["momentum"] = momentum
        cases.append(case)
    write("schedulers.lua", "Learning rates per group after construction (entry 1) and after each step.",
          {"cases": cases})


# ---- gradient clipping ----

def make_clip_fixtures():
    torch.manual_seed(1)
    grads = [torch.randn(s) * 0.7 for s in SHAPES]
    norm_cases = [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (0.3, math.inf), (2.0, 3.0), (0.0, 2.0)]
    cases = []
    for max_norm, norm_type in norm_cases:
        params = [torch.zeros(s, requires_grad=True) for s in SHAPES] + [torch.zeros(4, requires_grad=True)]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        # the last parameter has no gradient: skipped
        total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
        cases.append({"max_norm": max_norm, "norm_type": norm_type, "total_norm": float(total),
                      "grads": [flat(p.grad) for p in params[:3]]})
    value_cases = []
    for clip in (0.5, 0.05, 10.0):
        params = [torch.zeros(s, requires_grad=True) for s in SHAPES]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_value_(params, clip)
        value_cases.append({"clip_value": clip, "grads": [flat(p.grad) for p in params]})
    write("clip.lua", "Gradient clipping: clip_grad_norm_ (last parameter without gradient) and clip_grad_value_.", {
        "shapes": [list(s) for s in SHAPES],
        "grads": [flat(g) for g in grads],
        "norm": cases,
        "value": value_cases,
    })


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_optimizer_fixtures()
    make_scheduler_fixtures()
    make_clip_fixtures()
