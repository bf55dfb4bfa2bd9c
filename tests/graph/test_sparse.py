import torch

from convlens.graph.sparse import SparseFeatures, fast_dropout
from convlens.graph.fitting import row_normalize


def test_sparse_matmul_and_gradient_equal_dense(cora):
    x = row_normalize(cora.x)
    sx = SparseFeatures(x)
    assert sx.nnz == int((cora.x != 0).sum()) == 49216
    torch.manual_seed(0)
    w1 = torch.randn(1433, 16, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_(True)
    out_s, out_d = sx @ w1, x @ w2
    assert (out_s - out_d).abs().max().item() < 1e-6
    g = torch.randn(2708, 16)
    (out_s * g).sum().backward()
    (out_d * g).sum().backward()
    assert torch.allclose(w1.grad, w2.grad, atol=1e-5)
    assert torch.equal(sx.to_dense(), x)


def test_sparse_dropout_keeps_pattern_and_mean(cora):
    sx = SparseFeatures(row_normalize(cora.x))
    torch.manual_seed(1)
    d = sx.dropout(0.5, training=True)
    kept = (d.values != 0).float().mean().item()
    assert 0.49 < kept < 0.51  # 49 k Bernoulli(0.5) draws
    assert torch.allclose(d.values[d.values != 0], 2 * sx.values[d.values != 0])
    assert sx.dropout(0.5, training=False) is sx


def test_fast_dropout_law():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = fast_dropout(x, 0.3)
    assert abs((y == 0).float().mean().item() - 0.3) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation
    assert torch.equal(fast_dropout(x, 0.3, training=False), x)
