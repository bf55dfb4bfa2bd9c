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
    """``python -m convlens.transfer.cli transfer|predict ...`` (scripts, benchmarks): the
    ``convlens`` command itself, so errors end the one way every verb's do (one line, exit 2)."""
    from ..cli import main as convlens_main

    return convlens_main(argv)

if __name__ == "__main__":
    raise SystemExit(main())
