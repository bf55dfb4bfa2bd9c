"""``convlens train | compare | evaluate | predict | models``."""
from __future__ import annotations

import argparse
from dataclasses import fields, replace
from typing import Any

from .. import argtypes as A
from ..errors import ConvlensError
from ..options import add_flags, from_args
from .config import TrainConfig
from .distributed import check_devices, global_rank


def add_training_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """The flags of a training verb: one per :class:`TrainConfig` field, and ``--resume``."""
    add_flags(p, TrainConfig, skip=skip)
    p.add_argument("--resume", default=None, metavar="RUN", help="continue RUN from its last complete epoch")


def config_from_args(args: argparse.Namespace, **over: Any):
    given = {f.name for f in fields(TrainConfig) if f.name != "model_kwargs" and getattr(args, f.name, None) is not None}
    given |= {"model_kwargs"} if over.get("model_kwargs") else set()
    return from_args(TrainConfig, args, explicit=tuple(sorted(given)), **over)  # a recipe keeps what the user set (engine/recipes.py)


def parse_model_kwargs(pairs: list[str]) -> dict[str, Any]:
    """``["width=48", "flip_tta=true", "drop=0.1", "name=x"]`` -> typed values (timm's
    ``--model-kwargs``): ints, floats, true/false, none, else the text."""
    words = {"true": True, "false": False, "none": None}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConvlensError(f"--model-kwargs {pair!r}: write KEY=VALUE, e.g. width=48")
        out[key] = words[text.lower()] if text.lower() in words else next(
            (v for v in (_number(int, text), _number(float, text)) if v is not None), text)
    return out


def _number(kind: type, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        return None


def _train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, model_kwargs=parse_model_kwargs(args.model_kwargs))
    check_devices(cfg.devices, cfg.device, cfg.num_nodes)  # ddp: before any process, data or model
    from .training import train

    res = train(cfg, resume=args.resume, epochs=args.epochs if args.resume else None)
    if global_rank() != 0:  # ddp: every rank has the result; rank 0 prints it once
        return 0
    s = res.summary  # ddp: not res.run.summary(): the file is rank 0's
    print(f"report: {res.run.path / 'report.html'}")
    best = f"; best epoch {res.best_epoch} by validation" if s.get("val_images") else ""
    print(f"test accuracy {res.test_acc:.2%} ({s['test_images']:,} test images, {s['epochs']} epochs, {s['train_seconds']:.0f} s training{best})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, model_kwargs=parse_model_kwargs(args.model_kwargs))
    check_devices(cfg.devices, cfg.device, cfg.num_nodes)  # ddp: before any process, data or model
    from .comparison import compare

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if len(models) < 2:
        raise ConvlensError(f"--models {args.models!r}: give at least two models separated by commas, e.g. dnn,cnn")
    if args.budget:  # a CPU-sized experiment: a seeded subset of N images for E epochs, 10% of it for validation
        from .degradation import parse_budget

        n, e = parse_budget(args.budget)
        cfg = replace(cfg, limit_train=n, epochs=e, val_size=min(cfg.val_size, n // 10),
                      explicit=tuple(sorted({*cfg.explicit, "epochs", "val_size"})))
    out = compare(cfg, models, name=args.name)
    if global_rank() != 0:  # ddp: rank 0 prints the table once
        return 0
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


def _predict(args: argparse.Namespace) -> int:
    from .prediction import format_predictions, predict

    which = int(args.checkpoint) if str(args.checkpoint).isdigit() else args.checkpoint
    preds = predict(args.run, args.images, which=which, device=args.device)
    print(format_predictions(preds, k=args.top))
    return 2 if any(p.error for p in preds) else 0  # a missing/unreadable image is the user's to fix: exit 2


def _models(args: argparse.Namespace) -> int:
    from ..models.registry import describe_models

    for name, what in describe_models().items():
        print(f"{name:20} {what}")
    return 0


def _model_kwargs_flag(p: argparse.ArgumentParser, more: str = "") -> None:
    p.add_argument("--model-kwargs", nargs="+", default=[], metavar="KEY=VALUE",
                   help=f"arguments of the model's constructor, e.g. width=48 flip_tta=true (see `convlens models`){more}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an image classifier (Fashion-MNIST or an image folder)",
                       description="Train a model; writes runs/<name>/ with config, metrics, checkpoints, plots and report.html.")
    _model_kwargs_flag(p)
    add_training_flags(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("compare", help="train several models with one recipe and compare them",
                       description="e.g. convlens compare --data fashion-mnist --models dnn,cnn")
    p.add_argument("--models", required=True, help="comma-separated model names")
    p.add_argument("--budget", default=None, metavar="IMAGESxEPOCHS",
                   help="train on a seeded subset of IMAGES for EPOCHS (e.g. 5000x8: the degradation experiment on a CPU)")
    _model_kwargs_flag(p, "; every model gets them, e.g. zero_init_residual=true")
    add_training_flags(p, skip=("model",))
    p.set_defaults(func=_compare)

    p = sub.add_parser("evaluate", help="evaluate every checkpoint of a run and name the best epoch")
    p.add_argument("run", help="a run folder, e.g. runs/cnn-fashion-mnist-...")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="class probabilities of images under a run's model",
                       description="e.g. convlens predict runs/transfer-x photo.jpg other.png")
    p.add_argument("run", help="a run folder (train or transfer) or a .ckpt file")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--checkpoint", default="best", help="best, last or an epoch number")
    p.add_argument("--top", type=A.positive_int, default=5, help="show the K most probable classes")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_predict)

    p = sub.add_parser("models", help="list convlens' registered models")
    p.set_defaults(func=_models)
