"""Sparse node features, so that dropout and the first product X W cost O(nnz), not O(N F).

Dropout acts on the stored values only (the same random function on every non-zero entry), and
the backward of X W w.r.t. W, Xᵀ G, reuses a CSR Xᵀ built once instead of rebuilding it every
step; each choice is measured in docs/graph.md, "How it is made fast".
"""
from __future__ import annotations

import warnings

import torch


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout, x * m / (1 - p) with m ~ Bernoulli(1 - p): the law of ``F.dropout``,
    drawn as ``rand >= p`` (0.26 ms for Cora's 49 k values here, ``bernoulli_`` 0.62 ms)."""
    if not training or p == 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) >= p) * (1.0 / (1.0 - p))


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we only use the stable matmul
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


class SparseFeatures:
    """X (N, F) kept as CSR with a pre-built transpose. Duck-types the few Tensor attributes
    ``GCNConv`` reads from its input (``size``, ``dtype``, ``device``)."""

    def __init__(self, x: torch.Tensor, *, _structure: tuple | None = None, _values: torch.Tensor | None = None):
        if _structure is not None:
            self._s, self.values = _structure, _values
            return
        coo = (x.to_sparse_coo() if not x.is_sparse else x).coalesce().float()
        n, f = coo.shape
        r, c = coo.indices()
        # CSR of X: coalesced COO is already sorted by (row, col)
        crow = torch.zeros(n + 1, dtype=torch.long).index_add_(0, r + 1, torch.ones_like(r)).cumsum(0)
        # CSR of Xᵀ: the same entries sorted by (col, row); perm[k] = position in X of Xᵀ's k-th value
        perm = torch.argsort(c * n + r)
        tcrow = torch.zeros(f + 1, dtype=torch.long).index_add_(0, c + 1, torch.ones_like(c)).cumsum(0)
        self._s = (crow, c.clone(), tcrow, r[perm].clone(), perm, (n, f))
        self.values = coo.values().clone()

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self._s[5])

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def nnz(self) -> int:
        return self.values.numel()

    def to_dense(self) -> torch.Tensor:
        crow, col, *_ , size = self._s
        return _csr(crow, col, self.values, size).to_dense()

    def dropout(self, p: float, training: bool) -> "SparseFeatures":
        """Inverted dropout on the stored values only: same law as dropout on the dense X."""
        if not training or p == 0:
            return self
        return SparseFeatures(None, _structure=self._s, _values=fast_dropout(self.values, p, True))

    def matmul(self, w: torch.Tensor) -> torch.Tensor:
        """X W: (N, F) @ (F, out) -> (N, out); differentiable in W."""
        return _SpMM.apply(self.values, w, self._s)

    __matmul__ = matmul


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, w, s):  # noqa: D401 - autograd signature
        crow, col, tcrow, tcol, perm, size = s
        ctx.save_for_backward(values)
        ctx.s = s
        return _csr(crow, col, values, size) @ w

    @staticmethod
    def backward(ctx, grad_out):
        (values,) = ctx.saved_tensors
        crow, col, tcrow, tcol, perm, (n, f) = ctx.s
        grad_w = _csr(tcrow, tcol, values[perm], (f, n)) @ grad_out if ctx.needs_input_grad[1] else None
        return None, grad_w, None
