"""How long a full layer table takes next to the libraries it is cross-checked against.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/shapes_table.py [--model tv/resnet18] [--repeats 5]

Prints, for one model at its default input: a plain forward pass (eval, no_grad), convlens'
``layer_table`` (shapes + params + MACs + receptive field + memory in one pass),
``torchinfo.summary`` (shapes + params + mult-adds) and fvcore's ``FlopCountAnalysis``
(MACs, by JIT tracing); medians of ``--repeats`` round-robin runs, each one's ratio to ``layer_table``.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tv/resnet18")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from convlens._runtime import tune_allocator

    tune_allocator()  # as the CLI does; without it glibc page-faults every big activation back in
    torch.set_num_threads(args.threads)
    from convlens.hardware import hardware_line

    print(hardware_line(), flush=True)
    warnings.simplefilter("ignore")
    import torchinfo
    from fvcore.nn import FlopCountAnalysis

    from convlens.models import create_model
    from convlens.shapes import layer_table

    model = create_model(args.model).eval()
    shape = tuple(model.pretrained_cfg["input_size"])
    x = torch.zeros(1, *shape)

    def forward():
        with torch.no_grad():
            model(x)

    jobs = {
        "plain forward (no_grad)": forward,
        "convlens layer_table": lambda: layer_table(model, shape),
        "torchinfo.summary": lambda: torchinfo.summary(model, input_data=x, verbose=0, depth=100, mode="eval"),
        "fvcore FlopCountAnalysis": lambda: FlopCountAnalysis(model, x).unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False).total(),
    }
    for fn in jobs.values():
        fn()  # warm-up
    runs: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.repeats):  # round-robin, so drift of the machine hits every job alike
        for name, fn in jobs.items():
            t = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - t)
    times = {name: statistics.median(r) for name, r in runs.items()}
    ref = times["convlens layer_table"]
    print(f"{args.model} on 1x{'x'.join(map(str, shape))}, {args.threads} threads, median of {args.repeats}")
    for name, t in times.items():
        print(f"  {name:28s} {t * 1000:8.1f} ms   {t / ref:5.2f}x layer_table")


if __name__ == "__main__":
    main()
