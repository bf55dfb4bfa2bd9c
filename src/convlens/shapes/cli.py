"""``convlens shapes`` (layer tables, the size formula, AlexNet) and ``convlens conv demo``."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from ..errors import ConvlensError

_SHAPES_HELP = """\
TARGET is one of:
  alexnet           the chapter's AlexNet table (227x227x3, 62,378,344 parameters) and torchvision's
  conv | pool       the size formula W2 = (W1 - F + 2P)/S + 1 step by step; --input W1xH1xD1 (e.g. 32x32x3)
  MODEL             a convlens model (cnn, dnn, fashion_vgg...), a timm name (resnet18), tv/<torchvision name>,
                    or a run folder (runs/<name>); --input CxHxW (default: the model's own input size)
examples:
  convlens shapes alexnet
  convlens shapes conv --input 32x32x3 --filters 3 --kernel 5 --stride 1 --padding 2
  convlens shapes pool --input 55x55x96 --kernel 3 --stride 2
  convlens shapes tv/resnet18 --batch-size 64 --csv resnet18.csv
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("shapes", help="output sizes, parameters, MACs and receptive fields, layer by layer",
                              description="Output sizes, parameter and FLOP counts, receptive fields.", epilog=_SHAPES_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="alexnet | conv | pool | MODEL | RUN_FOLDER")
    p.add_argument("--input", default=None, help="conv/pool: W1xH1xD1 (e.g. 32x32x3); a model: CxHxW (e.g. 3x224x224)")
    p.add_argument("--filters", type=int, default=None, help="conv: number of filters K (= output depth)")
    p.add_argument("--kernel", default=None, help="conv/pool: filter size F (or FWxFH)")
    p.add_argument("--stride", default=None, help="conv/pool: stride S (conv default 1, pool default = kernel)")
    p.add_argument("--padding", default="0", help="conv/pool: zero padding P (default 0)")
    p.add_argument("--dilation", default="1", help="conv: dilation (default 1)")
    p.add_argument("--pool-type", choices=["max", "avg"], default="max", help="pool: max or avg (default max)")
    p.add_argument("--no-bias", action="store_true", help="conv: a layer without biases")
    p.add_argument("--floor", action="store_true", help="conv/pool: accept a non-whole size and floor it as PyTorch does")
    p.add_argument("--batch-size", type=int, default=1, help="batch size N for the activation-memory column (default 1)")
    p.add_argument("--which", default="best", help="run folder: checkpoint to read (best, last or an epoch)")
    p.add_argument("--no-check", action="store_true", help="skip the torchinfo/fvcore cross-checks")
    p.add_argument("--max-rows", type=int, default=None, help="print at most N rows (files get them all)")
    p.add_argument("--csv", default=None, metavar="FILE", help="write the rows as CSV")
    p.add_argument("--json", default=None, metavar="FILE", help="write everything as JSON")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write a figure")
    p.set_defaults(func=_shapes)

    c = subparsers.add_parser("conv", help="the chapter's convolution and pooling examples, computed",
                              description="Worked examples of convolution, padding, pooling, 1x1 and multi-channel convolution.")
    csub = c.add_subparsers(dest="conv_command", metavar="demo")
    d = csub.add_parser("demo", help="run one worked example: 1d | 2d | 3d | 1x1 | padding | pool")
    d.add_argument("name", choices=["1d", "2d", "3d", "1x1", "padding", "pool"])
    d.add_argument("--image", default=None, help="3d: a colour image to convolve (default: a synthetic one)")
    d.add_argument("--plot", default=None, metavar="FILE.png", help="write the matrices/maps as a figure")
    d.add_argument("--json", default=None, metavar="FILE", help="write the arrays as JSON")
    d.set_defaults(func=_conv_demo)
    c.set_defaults(func=lambda args: (c.print_help(), 2)[1])


def _ints(text: str | None, what: str) -> int | tuple[int, ...] | None:
    if text is None:
        return None
    from .formula import parse_dims

    if str(text).strip() == "0":
        return 0
    dims = parse_dims(str(text), f"--{what}")
    return dims[0] if len(dims) == 1 else dims


def _write(args: argparse.Namespace, obj: Any, rows: list[dict[str, Any]] | None = None,
           figure: Callable[[], Any] | None = None) -> None:
    """The files asked for: ``--csv`` (``rows``), ``--json`` (``obj``), ``--plot`` (``figure()``, drawn only then)."""
    from ..runs import atomic_write_json, save_figure
    from .table import write_csv

    if getattr(args, "csv", None):
        write_csv(args.csv, rows)
    if args.json:
        atomic_write_json(args.json, obj)
    if args.plot:
        save_figure(figure(), args.plot)
        print(f"plot: {args.plot}")


def _refuse(args: argparse.Namespace, flags: tuple[str, ...], target: str) -> None:
    for f in flags:
        if getattr(args, f.replace("-", "_")) not in (None, False):
            raise ConvlensError(f"--{f} does not apply to `convlens shapes {target}`; see `convlens shapes --help`")


def _shapes(args: argparse.Namespace) -> int:
    from .render import print_alexnet, print_formula, print_layer_table

    target = args.target
    if target in ("conv", "pool"):
        from .formula import conv_layer, parse_dims, pool_layer

        if args.input is None or args.kernel is None:
            raise ConvlensError(f"convlens shapes {target} needs --input W1xH1xD1 and --kernel F (e.g. --input 32x32x3 --kernel 5)")
        _refuse(args, ("csv", "plot"), target)
        inp = parse_dims(args.input)
        if target == "conv":
            if args.filters is None:
                raise ConvlensError("convlens shapes conv needs --filters K (the number of filters)")
            res = conv_layer(inp, args.filters, _ints(args.kernel, "kernel"), _ints(args.stride or "1", "stride"),
                             _ints(args.padding, "padding"), _ints(args.dilation, "dilation"), bias=not args.no_bias, floor=args.floor)
        else:
            _refuse(args, ("filters",), target)
            res = pool_layer(inp, _ints(args.kernel, "kernel"), _ints(args.stride, "stride"), _ints(args.padding, "padding"),
                             kind=args.pool_type, floor=args.floor)
        print_formula(res)
        _write(args, res)
        return 0
    _refuse(args, ("filters", "kernel", "stride", "no-bias", "floor"), target)
    if target == "alexnet":
        from .alexnet import alexnet_tables
        from .plots import plot_alexnet

        if args.input:
            raise ConvlensError("--input: `convlens shapes alexnet` is the chapter's table on 227x227x3; "
                                "for another size use `convlens shapes tv/alexnet --input 3xHxW`")
        res = alexnet_tables(check=not args.no_check)
        print_alexnet(res)
        _write(args, res, [{"network": k, **r} for k in ("chapter", "torchvision") for r in res[k]["rows"]],
               lambda: plot_alexnet(res))
        return 0
    from .plots import plot_layer_table
    from .residual import print_residual_blocks, residual_blocks  # where shortcuts add and pad (ResNets)
    from .table import model_table

    table = model_table(target, args.input, batch_size=args.batch_size, check=not args.no_check, which=args.which)
    print_layer_table(table, max_rows=args.max_rows)
    print_residual_blocks(residual_blocks(table.model, table.input_shape))
    _write(args, table.to_dict(), table.to_records(), lambda: plot_layer_table(table))
    return 1 if table.totals["formula_mismatches"] or not all(c["match"] for c in table.checks) else 0


def _conv_demo(args: argparse.Namespace) -> int:
    from .demos import plot_demo, run_demo
    from .render import print_demo

    res = run_demo(args.name, image=args.image)
    print_demo(res)
    _write(args, {k: v for k, v in res.items() if k not in ("image", "image_maps")}, figure=lambda: plot_demo(res))
    return 0
