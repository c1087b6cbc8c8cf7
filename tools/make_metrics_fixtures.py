#!/usr/bin/python3
"""Reference values for lightning.metrics (spec/metrics_confusion_spec.lua), computed with PyTorch.

For a few (prediction, target) sets it writes the confusion matrix and the scores that torchmetrics and
scikit-learn define: accuracy (micro), and precision, recall and F1 averaged "macro" (over the classes
that occur in the targets or the predictions), "weighted" (by support) and "micro", with 0 where a
denominator is 0 (zero_division=0). Run with Debian's python3-torch:
    /usr/bin/python3 tools/make_metrics_fixtures.py > spec/fixtures/trainer/metrics_reference.json
Classes are written 1-based, as Lua uses them.
"""
import json
import torch


def scores(pred, target, k):
    cm = torch.bincount(target * k + pred, minlength=k * k).reshape(k, k).double()
    tp = cm.diag()
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    support = tp + fn

    def div(a, b):
        return torch.where(b > 0, a / b.clamp(min=1), torch.zeros_like(a))

    precision, recall = div(tp, tp + fp), div(tp, tp + fn)
    f1 = div(2 * tp, 2 * tp + fp + fn)
    present = ((tp + fp + fn) > 0).double()
    out = {
        "num_classes": k,
        "pred": (pred + 1).tolist(),
        "target": (target + 1).tolist(),
        "counts": cm.long().tolist(),
        "accuracy": (tp.sum() / cm.sum()).item(),
        "per_class": {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
                      "support": support.long().tolist()},
    }
    for name, w in (("macro", present), ("weighted", support)):
        out[name] = {m: ((v * w).sum() / w.sum()).item() for m, v in
                     (("precision", precision), ("recall", recall), ("f1", f1))}
    micro = (tp.sum() / cm.sum()).item()
    out["micro"] = {"precision": micro, "recall": micro, "f1": micro}
    return out


def main():
    g = torch.Generator().manual_seed(0)
    cases = []
    # random predictions over 10 classes
    cases.append(scores(torch.randint(0, 10, (200,), generator=g), torch.randint(0, 10, (200,), generator=g), 10))
    # mostly right, with class 4 (0-based 3) never predicted and class 7 (0-based 6) absent from both
    target = torch.randint(0, 8, (150,), generator=g)
    target[target == 6] = 0
    pred = target.clone()
    flip = torch.rand(150, generator=g) < 0.3
    pred[flip] = torch.randint(0, 8, (int(flip.sum()),), generator=g)
    pred[pred == 3] = 2
    pred[pred == 6] = 1
    cases.append(scores(pred, target, 8))
    # all correct, 3 classes
    t = torch.tensor([0, 1, 2, 2, 1, 0, 2])
    cases.append(scores(t.clone(), t, 3))
    # logits: argmax decides, the first maximum wins on ties
    logits = torch.randn(64, 5, generator=g)
    logits[0] = torch.tensor([1.0, 3.0, 3.0, 0.0, -1.0])
    target = torch.randint(0, 5, (64,), generator=g)
    case = scores(logits.argmax(1), target, 5)
    case["logits"] = logits.tolist()
    cases.append(case)
    print(json.dumps({"torch_version": torch.__version__, "cases": cases}, indent=None))


if __name__ == "__main__":
    main()
