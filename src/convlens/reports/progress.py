"""The terminal's progress bar: one listener of a run's events (:mod:`convlens.events`), one tqdm
bar per epoch, ``message`` events printed above it. A notebook passes its own listener instead.
"""
from __future__ import annotations

import sys
from typing import Any

from ..events import RunEvent

_SHOWN = ("train_loss", "val_acc", "test_acc")


class TqdmBar:
    """``Callable[[RunEvent], None]`` drawing ``Epoch k/N: 60%|███  | 27/45 [loss=0.41, img_s=9120]``."""

    def __init__(self, file: Any = None, leave: bool = True):
        self.file, self.leave = file or sys.stderr, leave
        self.epochs: int | None = None
        self.bar: Any = None

    def __call__(self, ev: RunEvent) -> None:
        from tqdm import tqdm

        if ev.kind == "run_start":
            self.epochs = ev.total
        elif ev.kind == "epoch_start":
            self._close()
            of = f"/{self.epochs}" if self.epochs else ""
            # an epoch that reports no steps (a linear head on cached features: milliseconds) is one line of metrics
            steps = {} if ev.total else {"bar_format": "{desc}{postfix}"}
            self.bar = tqdm(total=ev.total, desc=f"Epoch {(ev.epoch or 0) + 1}{of}", unit="step", file=self.file,
                            leave=self.leave, dynamic_ncols=True, **steps)
        elif ev.kind == "step" and self.bar is not None:
            self.bar.n = ev.step or 0
            self.bar.set_postfix({k: (round(v, 4) if isinstance(v, float) else v) for k, v in ev.metrics.items()}, refresh=True)
        elif ev.kind == "epoch_end":
            if self.bar is not None:
                self.bar.n = self.bar.total or self.bar.n
                self.bar.set_postfix({k: round(v, 4) for k, v in ev.metrics.items() if k in _SHOWN}, refresh=False)  # close() draws it
            self._close()
        elif ev.kind == "message":
            tqdm.write(ev.message, file=self.file)
        elif ev.kind == "run_end":
            self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
