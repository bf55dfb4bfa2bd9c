"""``convlens transfer`` and ``convlens predict``."""
from __future__ import annotations

import argparse

from .. import argtypes as A


def _transfer(args: argparse.Namespace) -> int:
    from .run import TransferConfig, transfer

    cfg = TransferConfig(data=args.data, backbone=args.backbone, weights=args.weights, image_size=args.image_size, strategy=args.strategy, head=args.head,
                         views=args.views, unfreeze=args.unfreeze, unfreeze_from=args.unfreeze_from,
                         backbone_lr_ratio=args.backbone_lr_ratio, epochs=args.epochs or 13, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, weight_decay=args.weight_decay, augment=args.augment, seed=args.seed,
                         device=args.device, out=args.out, name=args.name, val_fraction=args.val_fraction,
                         test_fraction=args.test_fraction, limit_train=args.limit_train, limit_test=args.limit_test,
                         data_dir=args.data_dir, cache_dir=None if args.no_cache else (args.cache_dir or "default"),
                         strict=args.strict, progress=not args.no_progress, large_per_class=args.large_per_class,
                         similar_threshold=args.similar_threshold, head_init=args.head_init,
                         train_bn=args.train_bn)
    res = transfer(cfg, resume=args.resume, epochs=args.epochs if args.resume else None)
    s = res.summary
    print(f"report: {res.run.path / 'report.html'}")
    print(f"{s.get('strategy')}: test accuracy {res.test_acc:.2%} ({s.get('test_images')} test images; best epoch "
          f"{res.best_epoch} by {s.get('best_by', 'validation')}; {s.get('total_seconds', 0):.1f} s in all)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .prediction import format_predictions, predict

    which = int(args.checkpoint) if str(args.checkpoint).isdigit() else args.checkpoint
    preds = predict(args.run, args.images, which=which, device=args.device)
    print(format_predictions(preds, k=args.top))
    return 2 if any(p.error for p in preds) else 0  # a missing/unreadable image is the user's to fix: exit 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="transfer learning from an ImageNet backbone (feature extraction, fine-tuning, auto)",
                       description="Adapt a pretrained CNN to an image folder. feature-extract computes the frozen backbone's "
                                   "features once (cached) and trains a head in seconds; fine-tune trains the last stages too; "
                                   "auto measures data size and similarity to ImageNet and picks one of the chapter's four cases.")
    p.add_argument("--data", required=True, help="a folder with train/ and test/ (or one sub-folder per class), or fashion-mnist")
    p.add_argument("--data-dir", default=None, help="where a named data set's files are (fashion-mnist)")
    p.add_argument("--backbone", default="efficientnet_lite0", help="efficientnet_lite0 (offline), any timm name, or tv/<name>")
    p.add_argument("--weights", default=None, metavar="FILE", help="backbone weights .pth/.safetensors instead of downloading")
    p.add_argument("--image-size", type=A.positive_int, default=None, metavar="PX",
                   help="run the backbone at PX x PX instead of its weights' size (e.g. 96 for 28-pixel images)")
    p.add_argument("--strategy", default="feature-extract", choices=["feature-extract", "fine-tune", "auto"])
    p.add_argument("--head", default="linear", choices=["linear", "logreg"],
                   help="feature-extract head: linear (epochs on the cache) or logreg (L-BFGS, C by cross-validation)")
    p.add_argument("--views", type=A.non_negative_int, default=0, help="augmented views per training image whose features are cached too")
    p.add_argument("--unfreeze", type=int, default=None, help="fine-tune the last N stages (-1: all; default 2)")
    p.add_argument("--unfreeze-from", default=None, metavar="LAYER", help="fine-tune from this module on (e.g. blocks.5)")
    p.add_argument("--backbone-lr-ratio", type=A.finite_positive_float, default=0.1, help="pretrained layers' lr = ratio x --lr (default 0.1)")
    p.add_argument("--head-init", default="probe", choices=["probe", "random"],
                   help="fine-tune: start from a head fitted on the cached features (LP-FT, default) or a random one")
    p.add_argument("--train-bn", action="store_true",
                   help="fine-tune: BatchNorm layers of unfrozen stages learn (default: all BatchNorm stays frozen, in eval mode)")
    p.add_argument("--augment", default=None, choices=["none", "crop", "crop-flip"], help="fine-tune batch augmentation (default crop-flip)")
    p.add_argument("--epochs", type=A.positive_int, default=None, help="default 13; with --resume, the new total")
    p.add_argument("--batch-size", type=A.positive_int, default=32)
    p.add_argument("--lr", type=A.finite_positive_float, default=1e-3)
    p.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    p.add_argument("--weight-decay", type=A.finite_non_negative_float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=A.output_dir, default="runs", metavar="DIR")
    p.add_argument("--name", default=None)
    p.add_argument("--resume", default=None, metavar="RUN", help="continue a fine-tune run from its last epoch")
    p.add_argument("--val-fraction", type=A.probability, default=0.1, help="share of train held out to pick the best epoch")
    p.add_argument("--test-fraction", type=A.fraction, default=0.2, help="share held out as test when the folder has no test/")
    p.add_argument("--limit-train", type=A.positive_int, default=None, help="use a seeded subset of N training images")
    p.add_argument("--limit-test", type=A.positive_int, default=None)
    p.add_argument("--cache-dir", default=None, help="feature cache (default ~/.cache/convlens/features or $CONVLENS_CACHE/features)")
    p.add_argument("--no-cache", action="store_true", help="compute features without reading or writing the cache")
    p.add_argument("--strict", action="store_true", help="fail on the first unreadable image instead of skipping it")
    p.add_argument("--large-per-class", type=A.positive_int, default=1000, help="auto: 'large' from this median images per class")
    p.add_argument("--similar-threshold", type=A.finite_float, default=0.90, help="auto: 'similar' from this rescaled probe accuracy")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_transfer)

    p = sub.add_parser("predict", help="class probabilities of images under a run's model",
                       description="e.g. convlens predict runs/transfer-x photo.jpg other.png")
    p.add_argument("run", help="a run folder (train or transfer) or a .ckpt file")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--checkpoint", default="best", help="best, last or an epoch number")
    p.add_argument("--top", type=A.positive_int, default=5, help="show the K most probable classes")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_predict)


def main(argv: list[str] | None = None) -> int:
    """``python -m convlens.transfer.cli transfer|predict ...``: these two verbs alone, for
    scripts and benchmarks that should not depend on the other packages' verbs."""
    import sys

    from .._runtime import tune_allocator
    from ..errors import ConvlensError

    tune_allocator()
    parser = argparse.ArgumentParser(prog="convlens")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConvlensError as exc:
        print(f"convlens: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
