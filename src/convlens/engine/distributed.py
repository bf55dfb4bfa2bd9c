"""Training on many devices: DistributedDataParallel (DDP) through Lightning; docs/distributed.md
has the launchers, what differs from one device and the measurements.

One process per device, each with its own copy of the model; after ``backward`` the gradients
are averaged by an all-reduce. With ``W`` processes of per-device batch ``B``, one DDP step is
one step of a single process on the global batch of ``W*B`` images (``g = (1/W) sum_r g_r``
with ``g_r`` the mean gradient of rank r's ``B`` images):

    rank r sees positions r, r+W, r+2W, ... of the epoch's (seeded) order, in groups of B,
    so its step k covers positions kWB + r + W*i (i < B): together, positions [kWB, (k+1)WB),
    exactly the k-th batch of one process with batch WB.

Only rank 0 touches the run folder; the others get the result by broadcast. Evaluation leaves
the sampler's padding out (:func:`real_in_batch`) and puts the per-rank test predictions back
in test order (:func:`interleave`), so every image counts once.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConvlensError


@dataclass(frozen=True)
class Launch:
    """How this process was started and where it stands among the ranks.

    ``launcher``: ``"none"`` (one process), ``"lightning"`` (``--devices N``: Lightning starts
    local ranks 1..N-1 from this command), ``"torchrun"`` or ``"slurm"`` (every rank started
    from outside). ``devices`` is the number of processes per node, ``rank`` the global rank
    as far as the environment says it before the process group exists.
    """

    launcher: str
    devices: int
    num_nodes: int
    rank: int

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _int(env: Mapping[str, str], key: str) -> int | None:
    try:
        return int(env[key])
    except (KeyError, ValueError):
        return None


def detect_launch(devices: int = 1, num_nodes: int = 1, env: Mapping[str, str] | None = None) -> Launch:
    """Read torchrun's or SLURM's variables when they launched us, else use the flags.

    A launcher's own numbers win over ``--devices/--num-nodes``; a flag that contradicts them
    (``--devices 4`` under ``torchrun --nproc-per-node 2``) is refused in one line.
    """
    env = os.environ if env is None else env
    if all(k in env for k in ("RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "WORLD_SIZE", "GROUP_RANK")):
        per_node, world, rank = _int(env, "LOCAL_WORLD_SIZE") or 1, _int(env, "WORLD_SIZE") or 1, _int(env, "RANK") or 0
        launch = Launch("torchrun", per_node, max(1, world // per_node), rank)
    elif (_int(env, "SLURM_NTASKS") or 1) > 1 and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        nodes = _int(env, "SLURM_NNODES") or 1
        per_node = _int(env, "SLURM_NTASKS_PER_NODE") or max(1, (_int(env, "SLURM_NTASKS") or 1) // nodes)
        launch = Launch("slurm", per_node, nodes, _int(env, "SLURM_PROCID") or 0)
    else:
        # our own children (Lightning sets LOCAL_RANK/NODE_RANK before re-running the command);
        # the first process of each node has no LOCAL_RANK yet and is local rank 0
        local, node = _int(env, "LOCAL_RANK") or 0, _int(env, "NODE_RANK") or 0
        return Launch("lightning" if devices * num_nodes > 1 else "none", devices, num_nodes, node * devices + local)
    for flag, given, have in (("--devices", devices, launch.devices), ("--num-nodes", num_nodes, launch.num_nodes)):
        if given not in (1, have):
            raise ConvlensError(f"{flag} {given}: {launch.launcher} started {have} (per node / nodes); "
                                f"leave {flag} out under {launch.launcher}, it is read from the launcher")
    return launch


def check_devices(devices: int, device: str = "auto", num_nodes: int = 1) -> None:
    """Refuse ``--devices N`` beyond this machine before any process, data or model exists.

    CPU: one process per core at most (``os.cpu_count()``); more only thrash (each rank would
    get a fraction of a core, and ``--devices 99`` on 2 cores started 99 copies of convlens).
    CUDA: at most ``torch.cuda.device_count()``. Called by ``convlens train`` before the heavy
    imports and again by :func:`~convlens.engine.training.train`.
    """
    if devices < 1:
        raise ConvlensError(f"--devices {devices}: must be at least 1")
    if num_nodes < 1:
        raise ConvlensError(f"--num-nodes {num_nodes}: must be at least 1")
    if devices == 1:
        return
    kind = (device or "auto").split(":")[0]
    if kind in ("auto", "cuda"):
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have or kind == "cuda":
            if devices > have:
                raise ConvlensError(f"--devices {devices}: this machine has {have} CUDA device(s); use --devices {max(1, have)} "
                                    f"or fewer (more nodes: --num-nodes, see README 'More than one device')")
            return
        kind = "cpu"
    if kind == "mps":
        raise ConvlensError(f"--devices {devices}: Apple's MPS is one device; use --devices 1")
    cores = os.cpu_count() or 1
    if devices > cores:
        raise ConvlensError(f"--devices {devices}: this machine has {cores} CPU core(s), and each CPU process needs one; "
                            f"use --devices {cores} or fewer")


def threads_per_rank(devices: int, threads: int | None = None) -> int:
    """Torch threads for each of ``devices`` processes on one node: the cores shared out
    (``cores // devices``, at least 1), so threads x processes never exceeds the cores
    (the loaders have no worker processes)."""
    return threads or int(os.environ.get("CONVLENS_THREADS") or 0) or max(1, (os.cpu_count() or 1) // max(1, devices))


def pin_threads(launch: Launch, threads: int) -> None:
    """Under DDP, tell Lightning (and our children) the thread count: Lightning's launcher
    would otherwise set its own ``cores // devices`` over ``--threads``."""
    if launch.distributed:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def trainer_kwargs(launch: Launch, single_device: Any) -> dict[str, Any]:
    """``L.Trainer`` arguments: DDP over ``launch.devices`` x ``launch.num_nodes`` processes,
    or the one device ``single_device``."""
    if not launch.distributed:
        return {"devices": single_device}
    # "ddp": gloo on CPU, NCCL on CUDA; one process per device, gradients all-reduced
    return {"devices": launch.devices, "num_nodes": launch.num_nodes, "strategy": "ddp"}


# ---- evaluation shards --------------------------------------------------------------------
def real_in_batch(n: int, start: int, length: int, rank: int, world: int) -> int:
    """How many of a rank's evaluation batch are real images, not the sampler's padding.

    Rank r holds positions ``r, r+W, ...`` of ``n`` images padded to ``W*ceil(n/W)``; its
    real images are the first ``len(range(r, n, W))`` of its share, and the padding (at most
    one image) comes last. ``start`` is the batch's offset in the rank's share.
    """
    return length if world <= 1 else max(0, min(length, len(range(rank, n, world)) - start))


def interleave(parts: Any, n: int) -> Any:
    """Undo the round-robin sharding: ``parts`` (W, P, ...) with rank r's i-th row at test
    position ``i*W + r`` -> (n, ...) in test order (padding rows land past ``n``)."""
    w, p = parts.shape[:2]
    return parts.transpose(0, 1).reshape(w * p, *parts.shape[2:])[:n]


def gather_in_order(trainer: Any, chunks: list[Any], n: int) -> Any | None:
    """All ranks' test predictions (lists of (b, C) tensors) as one (n, C) tensor in test
    order, on every rank; None when there are none. A collective: every rank calls it."""
    import torch
    import torch.distributed as dist

    world = trainer.world_size
    mine = torch.cat(chunks) if chunks else None
    if world <= 1:
        return mine
    dev = trainer.strategy.root_device
    width = torch.tensor([0 if mine is None else mine.shape[1]], device=dev)
    dist.all_reduce(width, op=dist.ReduceOp.MAX)
    if int(width) == 0:
        return None
    padded = torch.zeros(-(-n // world), int(width), device=dev)  # each rank's share, padded
    if mine is not None and len(mine):
        padded[: len(mine)] = mine.float().to(dev)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return interleave(torch.stack(parts).cpu(), n)


def share_result(trainer: Any, payload: Any) -> Any:
    """Rank 0's ``payload`` on every rank (a broadcast; identity for one process)."""
    return payload if trainer.world_size <= 1 else trainer.strategy.broadcast(payload, src=0)


def global_rank() -> int:
    """This process's rank once the process group exists (0 without one)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
