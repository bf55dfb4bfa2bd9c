"""``convlens train | compare | evaluate``."""
from __future__ import annotations

import argparse
from typing import Any


def add_training_flags(p: argparse.ArgumentParser, epochs: int = 5, batch_size: int = 100, lr: float = 1e-3) -> None:
    """The flags users expect on every training verb."""
    p.add_argument("--epochs", type=int, default=None, help=f"default {epochs}; with --resume, the new total")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr, help="learning rate (default %(default)s)")
    p.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--scheduler", default="none", choices=["none", "cosine", "onecycle"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--devices", type=int, default=1, help="N > 1: DistributedDataParallel over N devices")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default %(default)s)")
    p.add_argument("--name", default=None, help="run folder name (default: model-data-time)")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue RUN from its last complete epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    p.add_argument("--precision", default="auto", choices=["auto", "32-true", "bf16-mixed", "16-mixed"],
                   help="auto: 16-mixed on CUDA, bf16-mixed on CPUs with native bf16, else 32-true")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training forward/backward (Inductor); off by default, see docs/speed.md")
    p.set_defaults(default_epochs=epochs)


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist, or a folder with one sub-folder per class")
    p.add_argument("--data-dir", default=None, help="folder holding the data set's files")
    p.add_argument("--download", action="store_true", help="download the data set if it is not found (online)")
    p.add_argument("--val-size", type=int, default=5000, help="training images held out to pick the best epoch (0: none)")
    p.add_argument("--augment", default="none", choices=["none", "crop", "crop-flip"])
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--limit-train", type=int, default=None, help="train on a seeded subset of N images")
    p.add_argument("--limit-test", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)


def config_from_args(args: argparse.Namespace, **over: Any):
    from .config import TrainConfig

    epochs = args.epochs if args.epochs is not None else args.default_epochs
    return TrainConfig(data=args.data, model=getattr(args, "model", "cnn"), epochs=epochs, batch_size=args.batch_size,
                       lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, scheduler=args.scheduler,
                       label_smoothing=args.label_smoothing, augment=args.augment, seed=args.seed, device=args.device,
                       devices=args.devices, threads=args.threads, out=args.out, name=args.name, val_size=args.val_size,
                       data_dir=args.data_dir, download=args.download, limit_train=args.limit_train,
                       limit_test=args.limit_test, progress=not args.no_progress, precision=args.precision,
                       compile=getattr(args, "compile", False), **over)


def parse_model_kwargs(pairs: list[str]) -> dict[str, Any]:
    """``["width=48", "flip_tta=true", "drop=0.1", "name=x"]`` -> typed values (timm's
    ``--model-kwargs``): ints, floats, true/false, none, else the text."""
    from ..errors import ConvlensError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConvlensError(f"--model-kwargs {pair!r}: write KEY=VALUE, e.g. width=48")
        low = text.lower()
        if low in ("true", "false"):
            out[key] = low == "true"
        elif low == "none":
            out[key] = None
        else:
            try:
                out[key] = int(text)
            except ValueError:
                try:
                    out[key] = float(text)
                except ValueError:
                    out[key] = text
    return out


def _train(args: argparse.Namespace) -> int:
    from .training import train

    cfg = config_from_args(args, model_kwargs=parse_model_kwargs(args.model_kwargs))
    res = train(cfg, resume=args.resume, epochs=args.epochs if args.resume else None)
    s = res.run.summary()
    print(f"report: {res.run.path / 'report.html'}")
    best = f"; best epoch {res.best_epoch} by validation" if s.get("val_images") else ""
    print(f"test accuracy {res.test_acc:.2%} ({s['test_images']:,} test images, {s['epochs']} epochs, {s['train_seconds']:.0f} s training{best})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ..errors import ConvlensError
    from .comparison import compare

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if len(models) < 2:
        raise ConvlensError(f"--models {args.models!r}: give at least two models separated by commas, e.g. dnn,cnn")
    out = compare(config_from_args(args), models, name=args.name)
    for row in out["table"]:
        print(f"{row['model']:>14}: test accuracy {row['test accuracy']:.2%}, {row['parameters']:,} parameters, {row['train seconds']:.0f} s")
    print(f"report: {out['folder'] / 'report.html'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_run

    res = evaluate_run(args.run, device=args.device, progress=not args.no_progress)
    for r in res["epochs"]:
        mark = "  <- best" if r["epoch"] == res["best_epoch"] else ""
        val = f"val {r['val_acc']:.2%}  " if "val_acc" in r else ""
        print(f"epoch {r['epoch']:3d}: {val}test {r.get('test_acc', float('nan')):.2%}{mark}")
    print(res["note"])
    print(f"best epoch {res['best_epoch']} (by {res['best_by']}): test accuracy {res['test_acc_at_best']:.2%}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from ..models.registry import describe_models

    for name, what in describe_models().items():
        print(f"{name:20} {what}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an image classifier (Fashion-MNIST or an image folder)",
                       description="Train a model; writes runs/<name>/ with config, metrics, checkpoints, plots and report.html.")
    p.add_argument("--model", default="cnn", help="cnn, dnn, cnn_chapter, fashion_vgg, or any timm name")
    p.add_argument("--model-kwargs", nargs="+", default=[], metavar="KEY=VALUE",
                   help="arguments of the model's constructor, e.g. width=48 flip_tta=true (see `convlens models`)")
    _data_flags(p)
    add_training_flags(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("compare", help="train several models with one recipe and compare them",
                       description="e.g. convlens compare --data fashion-mnist --models dnn,cnn")
    p.add_argument("--models", required=True, help="comma-separated model names")
    _data_flags(p)
    add_training_flags(p)
    p.set_defaults(func=_compare)

    p = sub.add_parser("evaluate", help="evaluate every checkpoint of a run and name the best epoch")
    p.add_argument("run", help="a run folder, e.g. runs/cnn-fashion-mnist-...")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("models", help="list convlens' registered models")
    p.set_defaults(func=_models)
