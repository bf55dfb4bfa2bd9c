"""``convlens explain layers|feature-maps|filters|cam|report|sanity``: ``MODEL`` is a run folder,
a ``.ckpt`` file or a model name (docs/explain.md); figures and pages go into ``--out``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import argtypes as A
from ..errors import ConvlensError

DEFAULT_OUT = "explanations"


def _verb(verbs: argparse._SubParsersAction, name: str, help: str, func: Any, out: bool = True) -> argparse.ArgumentParser:
    """A verb of ``explain``: MODEL, ``--which``, ``--device`` and (``out``) ``--out``, run by ``func``."""
    p = verbs.add_parser(name, help=help)
    p.add_argument("model", help="run folder, .ckpt file or model name (e.g. efficientnet_lite0)")
    p.add_argument("--which", default="best", help="checkpoint of a run: best, last or an epoch number (default best)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    if out:
        p.add_argument("--out", type=A.output_dir, default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    p.set_defaults(func=func)
    return p


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="feature maps, filters, class activation maps, reports, sanity checks",
                       description="Explain a trained CNN: what each stage sees, what the filters look like, where the "
                                   "class evidence is (CAM), and whether the map depends on the weights at all.")
    verbs = p.add_subparsers(dest="explain_verb", metavar="VERB")
    p.set_defaults(func=lambda a: (p.print_help() or 2))

    _verb(verbs, "layers", "the model's layers with feature maps, its stages and CAM target", _layers, out=False)

    v = _verb(verbs, "feature-maps", "grids of the strongest channels per stage (low -> high level)", _feature_maps)
    v.add_argument("images", nargs="+", help="image files")
    v.add_argument("--layers", nargs="+", help="layer names or stage indices (0 = lowest, -1 = highest); default: 3 stages")
    v.add_argument("--k", type=A.positive_int, default=16, help="channels per grid (default 16)")

    v = _verb(verbs, "filters", "first-layer kernels as RGB tiles; deeper kernels per channel", _filters)
    v.add_argument("--layers", nargs="+", help="conv layer names or conv indices; default: first conv + 3 deeper ones")

    v = _verb(verbs, "cam", "class activation map on the image, predicted class (and --class), with probabilities", _cam)
    v.add_argument("images", nargs="+", help="image files")
    v.add_argument("--class", dest="classes", action="append", default=[], help="also map this class (name, synonym or index); repeatable")
    v.add_argument("--method", default="gradcam", help="gradcam (default), gradcam++, layercam, xgradcam, hirescam, eigencam, scorecam (slow), ...")
    v.add_argument("--layer", default=None, help="target layer name or stage index (default: last feature map)")

    v = _verb(verbs, "report", "one HTML page per image (prediction, CAM, feature maps); --wrong N for a run's mistakes", _report)
    v.add_argument("images", nargs="*", help="image files")
    v.add_argument("--wrong", type=A.non_negative_int, default=0, metavar="N", help="pages for the N most confidently wrong test images of a run")
    v.add_argument("--class", dest="classes", action="append", default=[], help="also map this class; repeatable")
    v.add_argument("--method", default="gradcam")
    v.add_argument("--layers", nargs="+", help="feature-map layers (names or stage indices)")

    v = _verb(verbs, "sanity", "Adebayo et al. 2018: does the CAM change when the weights are randomised?", _sanity)
    v.add_argument("image")
    v.add_argument("--method", default="gradcam")
    v.add_argument("--layer", default=None)
    v.add_argument("--cascading", action="store_true", help="also randomise block by block from the top")
    v.add_argument("--seed", type=int, default=0)


def _load(args: argparse.Namespace) -> Any:
    from .._runtime import set_threads
    from .base import load_model

    # one thread: a single image is too small a job for a second OpenMP thread, which on a busy 2-core
    # machine waits for a descheduled partner (benchmarks/explain.py: 0.06-0.09 s with 1, 0.9-2.3 s with 2)
    set_threads(default=1)
    return load_model(args.model, which=args.which, device=args.device)


def _save(fig: Any, path: Path) -> Path:
    from ..runs import save_figure

    return save_figure(fig, path, dpi=100, tight=False)


def _layers(args: argparse.Namespace) -> int:
    from .layers import cam_target_layer, conv_layers, spatial_layers, stage_layers

    ex = _load(args)
    print(f"{ex.name}: input {ex.input_size}, {len(ex.classes)} classes")
    sp = spatial_layers(ex.model, ex.input_size)  # raises the one-line "no conv layer" error
    stages = stage_layers(ex.model, ex.input_size)
    target = cam_target_layer(ex.model, ex.input_size)
    for li in sp:
        tag = ([f"stage {stages.index(li.name)}"] if li.name in stages else []) + (["CAM target"] if li.name == target else [])
        print(f"  {li.name:40} {li.kind:22} {'x'.join(map(str, li.shape)):>14}  {', '.join(tag)}")
    print(f"{len(sp)} layers with feature maps; {len(conv_layers(ex.model))} conv layers; stages: {', '.join(stages)}")
    return 0


def _feature_maps(args: argparse.Namespace) -> int:
    from .feature_maps import compute_feature_maps, plot_feature_maps

    ex = _load(args)
    for image in args.images:
        fms = compute_feature_maps(ex, image, args.layers)
        path = _save(plot_feature_maps(fms, k=args.k, title=f"{ex.name}: {Path(image).name}"), Path(args.out) / f"{Path(image).stem}-feature-maps.png")
        print(f"{image}: strongest channels {'; '.join(f'{fm.layer}: {fm.top(5)}' for fm in fms)} -> {path}")
    return 0


def _filters(args: argparse.Namespace) -> int:
    from .filters import plot_filters

    ex = _load(args)
    path = _save(plot_filters(ex.model, args.layers, title=f"{ex.name}: filters"),
                 Path(args.out) / f"{Path(str(args.model).rstrip('/')).name}-filters.png")
    print(f"filters -> {path}")
    return 0


def _cam(args: argparse.Namespace) -> int:
    from .cam import compute_cam, plot_cam

    ex = _load(args)
    for image in args.images:
        r = compute_cam(ex, image, method=args.method, layer=args.layer, classes=args.classes)
        path = _save(plot_cam(r, title=f"{ex.name}: {r.method} at {r.layer}"), Path(args.out) / f"{Path(image).stem}-cam-{r.method}.png")
        print(f"{image}: {', '.join(f'{ex.classes[i]} {p:.1%}' for i, p in r.topk(3))} -> {path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import report_wrong, write_reports

    if not args.images and not args.wrong:
        raise ConvlensError("explain report: give image files and/or --wrong N (for a run folder)")
    out = Path(args.out)
    if args.images:
        index = write_reports(_load(args), args.images, out, method=args.method, classes=args.classes, layers=args.layers)
        print(f"{len(args.images)} pages -> {index}")
    if args.wrong:
        from .._runtime import set_threads

        set_threads()
        if not Path(args.model).is_dir():
            raise ConvlensError(f"--wrong needs a run folder (it re-reads the run's test split); {args.model!r} is not one")
        index = report_wrong(args.model, out / "wrong", n=args.wrong, which=args.which, method=args.method, device=args.device)
        print(f"most confidently wrong test images -> {index}")
    return 0


def _sanity(args: argparse.Namespace) -> int:
    from .base import prepare_image
    from .sanity import model_randomization_check, plot_sanity

    ex = _load(args)
    res = model_randomization_check(ex, args.image, method=args.method, layer=args.layer, seed=args.seed, cascading=args.cascading)
    path = _save(plot_sanity(res, prepare_image(args.image, ex).display()), Path(args.out) / f"{Path(args.image).stem}-sanity-{res.method}.png")
    print(f"{res.method} at {res.layer}: Spearman rho {res.spearman:.3f}, SSIM {res.ssim:.3f} between trained and randomised maps "
          f"-> {'PASS' if res.passed else 'FAIL'} (threshold {res.threshold}) -> {path}")
    return 0 if res.passed else 1
