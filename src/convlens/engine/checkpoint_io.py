"""Lightning's checkpoint writer, replaced by convlens' atomic one.

Lightning's ``TorchCheckpointIO`` writes through fsspec, whose local "transaction" puts the
bytes in a ``$TMPDIR`` file and moves it into place: across file systems that move is a copy,
so a full disk left a truncated ``epoch=001.ckpt`` under its real name. Here every checkpoint
goes through :func:`convlens.runs.atomic_torch_save`: serialised in memory, written to a
temporary file *beside* the target, fsynced, renamed. A crash or ENOSPC leaves the old file or
none, never half of one.
"""
from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..runs import atomic_torch_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """``Trainer(plugins=[AtomicCheckpointIO()])``: same files, written atomically (rank 0 only,
    as Lightning's strategies call ``save_checkpoint`` on the global-zero rank)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        atomic_torch_save(checkpoint, path)
