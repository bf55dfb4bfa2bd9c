"""Per-layer tables of any model, measured in one real forward pass.

For every layer call (a leaf module, or a module with its own parameters or operations) the
table holds the output shape seen by a forward hook, the shape the size formula predicts
(:func:`~convlens.shapes.formula.layer_output_shape`), weights, biases, trainable and frozen
parameters, multiply-accumulates, the receptive field and the bytes of the output.

Counting conventions (one image, ``N`` = batch size; explained in docs/shapes.md, "The maths"):

* **MACs** per torch operation, where it runs: a convolution :math:`|y| \\cdot C_\\text{in}/g \\cdot \\prod k`,
  a linear layer :math:`|y| \\cdot d_\\text{in}`, a matmul :math:`|y| \\cdot k`, attention
  :math:`B H L S (E + E_v)`. **FLOPs** :math:`= 2` MACs.
* **Receptive field** per spatial dimension, from :math:`r_0 = j_0 = 1`: a layer of kernel :math:`k`,
  stride :math:`s`, dilation :math:`d` gives :math:`r = r_\\text{in} + (k - 1) d\\, j_\\text{in}`,
  :math:`j = j_\\text{in} s`; element-wise ops take the maximum over their inputs; global pooling
  and flattening cover the whole input (:math:`r_\\text{in} + (n - 1) j_\\text{in}`).
* **Activation memory**: every layer output's bytes (in-place outputs count zero) times ``N``.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from ..errors import ConvlensError
from .formula import layer_output_shape, parse_dims

# ---- receptive-field and MAC bookkeeping at the level of torch functions --------------------

_META = "_convlens_rf"  # attribute set on tensors: (rf, jump, spatial) or (rf, None, None)
_CONV = {"conv1d", "conv2d", "conv3d"}
_CONV_T = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
_POOL = {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
         "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d"}
_ADAPTIVE = {"adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
             "adaptive_max_pool2d", "adaptive_max_pool3d", "adaptive_max_pool1d_with_indices",
             "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices"}
_MATMUL = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm"}


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _tup(v: Any, n: int) -> tuple:
    if isinstance(v, (list, tuple)):
        return tuple(v) if len(v) in (0, n) else (v[0],) * n
    return () if v is None else (v,) * n


def _contains(shape: Sequence[int], spatial: Sequence[int]) -> bool:
    """Does ``shape[1:]`` hold the spatial sizes contiguously (NCHW, NHWC...)?"""
    rest, n = tuple(shape[1:]), len(spatial)
    return any(rest[i:i + n] == tuple(spatial) for i in range(len(rest) - n + 1))


def _extent(meta: tuple) -> tuple[float, ...]:
    rf, jump, spatial = meta
    if spatial is None:
        return rf
    return tuple(r + (n - 1) * j for r, n, j in zip(rf, spatial, jump))


def _vmax(vals: list[tuple[float, ...]]) -> tuple[float, ...]:
    n = max(len(v) for v in vals)
    vals = [v if len(v) == n else (max(v),) * n for v in vals]
    return tuple(max(col) for col in zip(*vals))


def _propagate(name: str, args: tuple, kwargs: dict, out: Any, protected: frozenset[int] = frozenset()) -> None:
    outs = _tensors(out)
    if not outs:
        return
    xm = getattr(args[0], _META, None) if args else None
    o = outs[0]
    if xm is not None and xm[1] is not None and (name in _CONV | _CONV_T | _POOL | _ADAPTIVE):
        rf, jump, spatial = xm
        nd = len(spatial)
        if name in _CONV | _CONV_T:
            k = tuple(args[1].shape[2:])
            s = _tup(_arg(args, kwargs, 3, "stride", 1), nd)
            d = _tup(_arg(args, kwargs, 7 if name in _CONV_T else 5, "dilation", 1), nd)
        elif name in _POOL:
            k = _tup(_arg(args, kwargs, 1, "kernel_size"), nd)
            s = _tup(_arg(args, kwargs, 2, "stride"), nd) or k
            d = _tup(_arg(args, kwargs, 4, "dilation", 1), nd) if name.startswith("max") else (1,) * nd
        else:  # adaptive: windows of ceil(n/o), stride n//o
            osz = tuple(o.shape[-nd:])
            k = tuple(-(-n // m) for n, m in zip(spatial, osz))
            s = tuple(max(n // m, 1) for n, m in zip(spatial, osz))
            d = (1,) * nd
        if name in _CONV_T:  # the output grid is s times finer, and the kernel's taps lie on it
            jump = tuple(j / si for j, si in zip(jump, s))
        rf = tuple(r + (ki - 1) * di * j for r, ki, di, j in zip(rf, k, d, jump))
        if name not in _CONV_T:
            jump = tuple(j * si for j, si in zip(jump, s))
        meta = (rf, jump, tuple(o.shape[-nd:]))
    else:
        ins = [(t, getattr(t, _META)) for t in _tensors((args, kwargs)) if hasattr(t, _META)]
        if not ins:
            return
        if name in ("pad", "interpolate", "upsample", "upsample_nearest2d", "upsample_bilinear2d") and \
                ins[0][1][2] is not None and o.dim() == len(ins[0][1][2]) + 2:
            rf, jump, spatial = ins[0][1]
            new = tuple(o.shape[2:])
            if name != "pad":
                jump = tuple(j * n / m for j, n, m in zip(jump, spatial, new))
            meta = (rf, jump, new)
        else:
            same = [m for _, m in ins if m[2] is not None and o.dim() == len(m[2]) + 2 and tuple(o.shape[2:]) == m[2]]
            # else a layout that still holds H x W: NCHW -> NHWC permutes, per-position linear layers
            kept = same or [m for _, m in ins if m[2] is not None and _contains(o.shape, m[2])]
            if kept:
                rf = _vmax([m[0] if m in kept else _extent(m) for _, m in ins])
                meta = (rf, _vmax([m[1] for m in kept]), kept[0][2])
            else:  # the H x W layout is gone (flatten, tokens, global mean): everything seen so far
                meta = (_vmax([_extent(m) for _, m in ins]), None, None)
    for t in outs:  # never tag the model's own tensors: the tag would travel into checkpoints
        if not isinstance(t, nn.Parameter) and id(t) not in protected:
            try:
                setattr(t, _META, meta)
            except (AttributeError, RuntimeError):
                pass


def _macs(name: str, args: tuple, kwargs: dict, out: Any) -> list[tuple[str, int]]:
    """``[(category, MACs)]`` of one torch function call (categories: conv, linear, matmul,
    attention = the two matmuls of scaled dot-product attention)."""
    o = _first_tensor(out)
    if o is None:
        return []
    if name in _CONV:
        return [("conv", o.numel() * math.prod(args[1].shape[1:]))]
    if name in _CONV_T:
        return [("conv", args[0].numel() * math.prod(args[1].shape[1:]))]
    if name == "linear":
        w = _arg(args, kwargs, 1, "weight")
        return [("linear", o.numel() * w.shape[1])]
    if name in _MATMUL:
        ts = _tensors(args)
        a = ts[-2] if len(ts) >= 2 else ts[0]
        return [("matmul", o.numel() * a.shape[-1])]
    if name == "scaled_dot_product_attention":
        q, k, v = (_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
        return [("attention", math.prod(q.shape[:-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1]))]
    if name in ("multi_head_attention_forward", "_native_multi_head_attention"):
        # nn.MultiheadAttention, seen as one call: (L, N, E) inputs, or (N, L, E) on the fast path
        q, k = args[0], args[1]
        e = q.shape[-1]
        n = (q.shape[0] if name.startswith("_") else q.shape[1]) if q.dim() == 3 else 1
        lq, lk = q.numel() // e, k.numel() // e
        proj = lq * e * e + 2 * lk * e * e + lq * e * e  # q, k, v in-projections + out-projection
        return [("linear", proj), ("attention", lq * (lk // n) * 2 * e)]
    return []


class _Recorder(TorchFunctionMode):
    """Counts MACs per operator and propagates receptive fields through every torch function."""

    def __init__(self, stack: list, protected: frozenset[int] = frozenset()):
        super().__init__()
        self.stack = stack
        self.protected = protected

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name.startswith("__get__") or name in ("dim", "size", "numel", "data_ptr", "element_size"):
            return out
        if self.stack:
            for cat, n in _macs(name, args, kwargs, out):
                self.stack[-1]["ops"][cat] += n
        _propagate(name, args, kwargs, out, self.protected)
        return out


@dataclass
class LayerTable:
    """One row per layer call (plain dicts, see :data:`COLUMNS`), in execution order, the model's
    totals, and the cross-checks of :func:`cross_check`."""

    model_name: str
    input_shape: tuple[int, ...]
    batch_size: int
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    checks: list[dict[str, Any]] = field(default_factory=list)
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "input_shape": list(self.input_shape), "batch_size": self.batch_size,
                "rows": self.to_records(), "totals": self.totals, "checks": self.checks}

    def to_records(self) -> list[dict[str, Any]]:
        return [{k: r[k] for k in COLUMNS} for r in self.rows]

    def to_pandas(self) -> Any:
        return as_dataframe(self.to_records())

    def write_csv(self, path: str | os.PathLike) -> Path:
        return write_csv(path, self.to_records())

    def write_json(self, path: str | os.PathLike) -> Path:
        from ..runs import atomic_write_json

        return atomic_write_json(path, self.to_dict())


def _cell(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    if isinstance(v, dict):
        return ";".join(f"{k}={x}" for k, x in v.items())
    return "" if v is None else v


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """One line per row, atomically (a crash never leaves half a file); shapes are written
    ``CxHxW`` (lists joined with ``x``)."""
    from ..runs import atomic_write_text

    buf = io.StringIO()
    fields = list(rows[0]) if rows else []
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in fields})
    return atomic_write_text(path, buf.getvalue())


def as_dataframe(rows: Sequence[dict[str, Any]]) -> Any:
    """Rows (plain dicts) as a ``pandas.DataFrame``; pandas is optional, not a dependency."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ConvlensError("pandas is not installed: use the plain dicts (e.g. LayerTable.to_records()) or pip install pandas") from exc
    return pd.DataFrame(list(rows))


COLUMNS = ("index", "name", "type", "input_shape", "output_shape", "formula_shape", "formula_ok", "exact",
           "weights", "biases", "params", "trainable", "frozen", "macs", "flops", "receptive_field", "jump",
           "output_bytes", "activation_bytes")


@contextmanager
def measuring(model: nn.Module, handles: Sequence[Any] = ()) -> Iterator[Callable[..., torch.Tensor]]:
    """A measuring pass in eval mode; afterwards the hooks' ``handles`` are removed and the model's
    train/eval mode restored. Yields ``zeros(shape, dtype)``: one zero image ``(1, *shape)`` on the
    model's device."""
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    try:
        yield lambda shape, dtype=torch.float32: torch.zeros(1, *shape, dtype=dtype, device=device)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def _first_tensor(obj: Any) -> torch.Tensor | None:
    return next(iter(_tensors(obj)), None)


def layer_table(model: nn.Module, input_shape: Sequence[int] | None = None, batch_size: int = 1,
                model_name: str | None = None, dtype: torch.dtype = torch.float32) -> LayerTable:
    """Run one forward pass of ``model`` on zeros of shape ``(1, *input_shape)`` and tabulate it.

    Args:
        model: any ``nn.Module`` taking one image tensor (its train/eval mode is restored).
        input_shape: ``(C, H, W)`` without the batch; default ``model.pretrained_cfg["input_size"]``.
        batch_size: ``N`` for the activation-memory column (shapes scale linearly with ``N``,
            so the pass itself runs on one image).
    """
    if input_shape is None:
        input_shape = tuple((getattr(model, "pretrained_cfg", None) or {}).get("input_size") or ())
        if not input_shape:
            raise ConvlensError("this model does not say its input size: pass --input CxHxW (e.g. 3x224x224)")
    input_shape = tuple(int(v) for v in input_shape)
    if batch_size < 1:
        raise ConvlensError(f"--batch-size {batch_size}: must be >= 1")
    names = {m: n for n, m in model.named_modules()}
    calls: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    seen: set[int] = set()

    def pre(mod: nn.Module, args: tuple) -> None:
        rec = {"module": mod, "in": _first_tensor(args), "ops": Counter(), "first": id(mod) not in seen}
        seen.add(id(mod))
        calls.append(rec)
        stack.append(rec)

    def post(mod: nn.Module, args: tuple, out: Any) -> None:
        rec = stack.pop()
        y = _first_tensor(out)
        rec["in_shape"] = tuple(rec["in"].shape) if rec["in"] is not None else None
        rec["out_shape"] = tuple(y.shape) if y is not None else None
        meta = getattr(y, _META, None)
        rec["rf"] = meta[0] if meta else None
        rec["jump"] = meta[1] if meta else None
        inplace = rec["in"] is not None and y is not None and y.data_ptr() == rec["in"].data_ptr() and y.numel() == rec["in"].numel()
        rec["bytes"] = 0 if inplace else sum(t.numel() * t.element_size() for t in _tensors(out))
        rec["in"] = None

    handles = [h for m in model.modules() for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with measuring(model, handles) as zeros:
            x = zeros(input_shape, dtype)
            setattr(x, _META, ((1.0,) * (len(input_shape) - 1), (1.0,) * (len(input_shape) - 1), tuple(input_shape[1:])))
            protected = frozenset(id(t) for t in (*model.parameters(), *model.buffers()))
            with torch.no_grad(), _Recorder(stack, protected):
                model(x)
    except (RuntimeError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConvlensError(f"--input {'x'.join(map(str, input_shape))}: the model's forward pass failed ({first}); "
                            f"give the input size it expects as CxHxW") from exc

    rows = []
    for rec in calls:
        mod = rec["module"]
        leaf = next(mod.children(), None) is None
        own = list(mod.named_parameters(recurse=leaf)) if rec["first"] else []
        if not leaf and not own and not rec["ops"]:
            continue  # a container: its children have rows
        if rec["out_shape"] is None:
            continue
        weights = sum(p.numel() for n, p in own if not n.endswith("bias"))
        biases = sum(p.numel() for n, p in own if n.endswith("bias"))
        trainable = sum(p.numel() for _, p in own if p.requires_grad)
        pred = layer_output_shape(mod, rec["in_shape"]) if leaf and rec["in_shape"] is not None else None
        macs = sum(rec["ops"].values())
        name = names.get(mod, "?") or "(model)"
        rows.append({
            "index": len(rows), "name": name if leaf else f"{name} (own ops)", "type": type(mod).__name__,
            "input_shape": list(rec["in_shape"][1:]) if rec["in_shape"] else None,
            "output_shape": list(rec["out_shape"][1:]),
            "formula_shape": list(pred[0][1:]) if pred else None,
            "formula_ok": None if pred is None else tuple(pred[0]) == tuple(rec["out_shape"]),
            "exact": None if pred is None else pred[1],
            "weights": weights, "biases": biases, "params": weights + biases,
            "trainable": trainable, "frozen": weights + biases - trainable,
            "macs": macs, "flops": 2 * macs, "ops": dict(rec["ops"]),
            "receptive_field": [round(v, 3) for v in rec["rf"]] if rec["rf"] else None,
            "jump": [round(v, 3) for v in rec["jump"]] if rec["jump"] else None,
            "output_bytes": rec["bytes"], "activation_bytes": rec["bytes"] * batch_size,
        })

    # a module whose forward reads a child's weights directly (nn.MultiheadAttention's fast
    # path reads out_proj) never calls it: its parameters belong to the nearest row above
    called = {id(rec["module"]) for rec in calls}
    by_name = {r["name"].removesuffix(" (own ops)"): r for r in rows}
    for mod_name, mod in model.named_modules():
        own = list(mod.parameters(recurse=False))
        if id(mod) in called or not own:
            continue
        parts = mod_name.split(".")
        host = next((by_name[".".join(parts[:i])] for i in range(len(parts) - 1, 0, -1) if ".".join(parts[:i]) in by_name), None)
        if host is not None:
            for n, p in mod.named_parameters(recurse=False):
                host["biases" if n.endswith("bias") else "weights"] += p.numel()
                host["params"] += p.numel()
                host["trainable" if p.requires_grad else "frozen"] += p.numel()

    all_params = list(model.parameters())
    n_params = sum(p.numel() for p in all_params)
    n_train = sum(p.numel() for p in all_params if p.requires_grad)
    totals = {
        "params": n_params, "trainable": n_train, "frozen": n_params - n_train,
        "params_in_forward": sum(r["params"] for r in rows),
        "weights": sum(r["weights"] for r in rows), "biases": sum(r["biases"] for r in rows),
        "macs": sum(r["macs"] for r in rows), "flops": 2 * sum(r["macs"] for r in rows),
        "macs_by_op": dict(sum((Counter(r["ops"]) for r in rows), Counter())),
        "activation_bytes": sum(r["activation_bytes"] for r in rows),
        "input_bytes": math.prod(input_shape) * torch.finfo(dtype).bits // 8 * batch_size,
        "param_bytes": sum(p.numel() * p.element_size() for p in all_params),
        "layers": len(rows),
        "formula_checked": sum(r["formula_ok"] is not None for r in rows),
        "formula_mismatches": [r["name"] for r in rows if r["formula_ok"] is False],
        "floored_layers": [r["name"] for r in rows if r["exact"] is False],
        # the conventional figure: the last feature map that still has a spatial layout (> 1x1)
        "receptive_field": next((r["receptive_field"] for r in reversed(rows) if r["jump"] and
                                 math.prod(r["output_shape"][-len(r["jump"]):]) > 1), None),
    }
    label = model_name or getattr(model, "convlens_name", None) or type(model).__name__
    return LayerTable(label, input_shape, batch_size, rows, totals, model=model)


def cross_check(model: nn.Module, table: LayerTable) -> list[dict[str, Any]]:
    """Compare the table with torchinfo and fvcore where they cover it (docs/shapes.md, "Cross-checks").
    Each check: ``{"what", "convlens", "reference", "library", "match"}``; also stored in ``table.checks``."""
    with measuring(model) as zeros:
        x = zeros(table.input_shape)
        import torchinfo

        stats = torchinfo.summary(model, input_data=x, verbose=0, depth=100, mode="eval")
        checks = [_check("parameters", table.totals["params"], stats.total_params, "torchinfo"),
                  _check("trainable parameters", table.totals["trainable"], stats.trainable_params, "torchinfo")]
        ref = {}
        for info in stats.summary_list:
            if info.is_leaf_layer and isinstance(info.output_size, (list, tuple)) and info.output_size:
                ref.setdefault(id(info.module), list(info.output_size[1:]))
        ours = {id(mod): mod_name for mod_name, mod in model.named_modules()}
        by_name = {r["name"]: r["output_shape"] for r in table.rows}
        compared = [(ours[k], by_name[ours[k]], v) for k, v in ref.items() if ours.get(k) in by_name]
        bad = [c for c in compared if list(c[1]) != list(c[2])]
        checks.append({"what": "leaf output shapes", "convlens": f"{len(compared) - len(bad)}/{len(compared)} equal",
                       "reference": f"{len(compared)} layers", "library": "torchinfo",
                       "match": not bad and bool(compared), "mismatches": [f"{n}: {a} vs {b}" for n, a, b in bad][:5]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fvcore's import and tracing warn about torch.jit
            from fvcore.nn import FlopCountAnalysis

            logging.getLogger("fvcore").setLevel(logging.ERROR)
            fca = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_op = fca.by_operator()
    ours = table.totals["macs_by_op"]
    # fvcore does not count scaled_dot_product_attention (it lists it as unsupported)
    groups = {"conv": ("conv",), "linear": ("linear", "addmm"), "matmul": ("matmul", "bmm")}
    for ours_key, keys in groups.items():
        ref_v = sum(int(by_op.get(k, 0)) for k in keys)
        if ours.get(ours_key, 0) or ref_v:
            checks.append(_check(f"{ours_key} MACs", ours.get(ours_key, 0), ref_v, "fvcore"))
    table.checks = checks
    return checks


def _check(what: str, ours: int, ref: int, lib: str) -> dict[str, Any]:
    return {"what": what, "convlens": int(ours), "reference": int(ref), "library": lib, "match": int(ours) == int(ref)}


def parse_input_shape(text: str | Sequence[int] | None, default: Sequence[int] | None) -> tuple[int, ...] | None:
    """``--input`` for a model: ``CxHxW``; ``HxW`` or ``S`` keep the model's channels."""
    if text is None:
        return tuple(default) if default else None
    dims = parse_dims(text) if isinstance(text, str) else tuple(int(v) for v in text)
    if len(dims) == 3:
        return dims
    chans = (default or (3,))[0]
    if len(dims) == 2:
        return (chans, *dims)
    if len(dims) == 1:
        return (chans, dims[0], dims[0])
    raise ConvlensError(f"--input {text}: give CxHxW (e.g. 3x224x224), HxW or one side")


def model_table(spec: str | os.PathLike | nn.Module, input: str | Sequence[int] | None = None, batch_size: int = 1,
                check: bool = True, which: str | int = "best") -> LayerTable:
    """The layer table of a model given by name, run folder or object (the ``convlens shapes``
    verb). ``input`` is ``"CxHxW"`` or a tuple; ``check`` adds torchinfo/fvcore cross-checks;
    ``which`` picks a run folder's checkpoint (``best``, ``last`` or an epoch)."""
    if isinstance(spec, nn.Module):
        model, label = spec, getattr(spec, "convlens_name", type(spec).__name__)
    else:
        from ..models.resolve import resolve_model

        model, meta = resolve_model(spec, which=which)
        label = meta["label"]
    shape = parse_input_shape(input, (getattr(model, "pretrained_cfg", None) or {}).get("input_size"))
    table = layer_table(model, shape, batch_size=batch_size, model_name=label)
    if check:
        cross_check(model, table)
    return table
