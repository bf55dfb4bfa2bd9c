"""``convlens transfer``."""
from __future__ import annotations

import argparse

def _transfer(args: argparse.Namespace) -> int:
    from ..options import from_args
    from .run import TransferConfig, transfer

    cfg = from_args(TransferConfig, args, **({"cache_dir": None} if args.no_cache else {}))
    res = transfer(cfg, resume=args.resume, epochs=args.epochs if args.resume else None)
    s = res.summary
    print(f"report: {res.run.path / 'report.html'}")
    print(f"{s.get('strategy')}: test accuracy {res.test_acc:.2%} ({s.get('test_images')} test images; best epoch "
          f"{res.best_epoch} by {s.get('best_by', 'validation')}; {s.get('total_seconds', 0):.1f} s in all)")
    return 0

def register(sub: argparse._SubParsersAction) -> None:
    from ..options import add_flags
    from .config import TransferConfig

    p = sub.add_parser("transfer", help="transfer learning from an ImageNet backbone (feature extraction, fine-tuning, auto)",
                       description="Adapt a pretrained CNN to an image folder. feature-extract computes the frozen backbone's "
                                   "features once (cached) and trains a head in seconds; fine-tune trains the last stages too; "
                                   "auto measures data size and similarity to ImageNet and picks one of the chapter's four cases.")
    add_flags(p, TransferConfig, data={"required": True})
    p.add_argument("--resume", default=None, metavar="RUN", help="continue a fine-tune run from its last epoch")
    p.add_argument("--no-cache", action="store_true", help="compute features without reading or writing the cache")
    p.set_defaults(func=_transfer)

def main(argv: list[str] | None = None) -> int:
    """``python -m convlens.transfer.cli transfer|predict ...``: these two verbs alone, for
    scripts and benchmarks that should not depend on the other packages' verbs."""
    import sys

    from .._runtime import tune_allocator
    from ..errors import ConvlensError

    tune_allocator()
    parser = argparse.ArgumentParser(prog="convlens")
    from ..engine.cli import register_predict

    verbs = parser.add_subparsers(dest="command", required=True)
    register(verbs)
    register_predict(verbs)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConvlensError as exc:
        print(f"convlens: error: {exc}", file=sys.stderr)
        return 2

if __name__ == "__main__":
    raise SystemExit(main())
