"""Writes spec/fixtures/lightning/hooks.json: the order in which PyTorch Lightning calls a module's and a
callback's hooks (fit with validation, with and without an epoch scheduler, validate, test, predict) and
the keys of the checkpoint it saves, from a tiny model run on the CPU. spec/trainer_hooks_spec.lua and
spec/trainer_checkpoint_metadata_spec.lua compare our Trainer with it; docs/trainer.md lists the
differences and why.

  bench/setup_peers.sh && .venv-peers/bin/python tools/make_lightning_fixtures.py
"""
import inspect
import json
import os
import tempfile

import pytorch_lightning as pl
import torch
from pytorch_lightning.core.hooks import CheckpointHooks, DataHooks, ModelHooks
from torch.utils.data import DataLoader, TensorDataset

OUT = os.path.join(os.path.dirname(__file__), "..", "spec", "fixtures", "lightning", "hooks.json")

# Every hook a LightningModule may define, and the methods the loops call on it (steps, optimizer
# plumbing): each call is recorded by name, in order.
MODULE_HOOKS = sorted(
    {n for cls in (ModelHooks, DataHooks, CheckpointHooks) for n, _ in inspect.getmembers(cls, inspect.isfunction)
     if not n.startswith("_")}
    | {"training_step", "validation_step", "test_step", "predict_step", "configure_optimizers",
       "configure_callbacks", "optimizer_step", "optimizer_zero_grad", "backward", "lr_scheduler_step",
       "configure_gradient_clipping", "on_validation_model_zero_grad"})
# Data hooks that would replace the loaders we pass in: not recorded (they are not called when loaders
# are given to fit).
# configure_sharded_model is configure_model's deprecated name: Lightning refuses a module that has both.
MODULE_HOOKS = [n for n in MODULE_HOOKS if not n.endswith("_dataloader") and n != "configure_sharded_model"]
CALLBACK_HOOKS = sorted(n for n, _ in inspect.getmembers(pl.Callback, inspect.isfunction)
                        if not n.startswith("_") and n not in ("state_dict", "load_state_dict", "state_key"))


def recording(cls, names, called, prefix=""):
    """A subclass of cls whose methods in names append prefix + name to called, then do their work."""
    def wrap(name):
        inner = getattr(cls, name)

        def hook(self, *args, **kwargs):
            called.append(prefix + name)
            return inner(self, *args, **kwargs)
        return hook
    return type("Recording" + cls.__name__, (cls,), {n: wrap(n) for n in names if hasattr(cls, n)})


class Regression(pl.LightningModule):
    def __init__(self, scheduler=False):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(3, 1)
        self.scheduler = scheduler

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

    def predict_step(self, batch, batch_idx):
        return self(batch[0])

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        if self.scheduler:
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)}
        return opt


def loader(n):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4 * n, 3, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)


def trainer(root, **kw):
    opts = dict(default_root_dir=root, logger=False, enable_progress_bar=False, enable_model_summary=False,
                accelerator="cpu", devices=1, max_epochs=1)
    opts.update(kw)
    return pl.Trainer(**opts)


def run(stage, root, scheduler=False):
    called = []
    model = recording(Regression, MODULE_HOOKS, called)(scheduler)
    callback = recording(pl.Callback, CALLBACK_HOOKS, called, "Callback.")()
    if stage == "fit":
        t = trainer(root, limit_train_batches=2, limit_val_batches=2, callbacks=[callback])
        t.fit(model, loader(3), loader(3))
    elif stage == "validate":
        trainer(root, callbacks=[callback]).validate(model, loader(2), verbose=False)
    elif stage == "test":
        trainer(root, callbacks=[callback]).test(model, loader(2), verbose=False)
    else:
        trainer(root, callbacks=[callback]).predict(model, loader(2))
    return called


def checkpoint_layout(root):
    t = trainer(root, limit_train_batches=2, limit_val_batches=2,
                callbacks=[pl.callbacks.ModelCheckpoint(dirpath=root, save_last=True),
                           pl.callbacks.EarlyStopping(monitor="val_loss")])
    t.fit(Regression(scheduler=True), loader(3), loader(3))
    ckpt = torch.load(os.path.join(root, "last.ckpt"), weights_only=False)
    return {
        "keys": sorted(ckpt),
        "callbacks": sorted(ckpt["callbacks"]),
        "loops": sorted(ckpt["loops"]),
        "fit_loop": sorted(ckpt["loops"]["fit_loop"]),
        "hyper_parameters": sorted(ckpt["hyper_parameters"]),
        "epoch": ckpt["epoch"],
        "global_step": ckpt["global_step"],
    }


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as root:
        fixture = {
            "pytorch_lightning": pl.__version__,
            "torch": torch.__version__.split("+")[0],
            "fit": run("fit", root + "/a"),
            "fit_with_scheduler": run("fit", root + "/b", scheduler=True),
            "validate": run("validate", root + "/c"),
            "test": run("test", root + "/d"),
            "predict": run("predict", root + "/e"),
            "checkpoint": checkpoint_layout(root + "/f"),
        }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}: pytorch_lightning {pl.__version__}")


if __name__ == "__main__":
    main()
