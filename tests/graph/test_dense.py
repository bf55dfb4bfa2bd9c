import torch
from torch_geometric.nn import GCNConv

from convlens.graph.dense import DenseGCNLayer
from convlens.graph.matrices import normalized_adjacency


def test_dense_layer_equals_gcnconv_on_cora_subgraph(cora):
    from torch_geometric.utils import subgraph

    n = 500
    ei, _ = subgraph(torch.arange(n), cora.edge_index, relabel_nodes=True)
    x = cora.x[:n]
    torch.manual_seed(0)
    conv = GCNConv(x.size(1), 16)
    torch.nn.init.normal_(conv.bias)  # a non-zero bias, so the bias path is tested too
    dense = DenseGCNLayer(x.size(1), 16).copy_from_gcnconv(conv)
    a_hat = normalized_adjacency(ei, n)
    ref, ours = conv(x, ei), dense(x, a_hat)
    assert (ref - ours).abs().max().item() < 1e-6
    # and the gradients w.r.t. the weights agree too
    ref.pow(2).sum().backward()
    ours.pow(2).sum().backward()
    assert torch.allclose(conv.lin.weight.grad.t(), dense.weight.grad, atol=1e-5, rtol=1e-4)


def test_dense_layer_by_hand(path4):
    layer = DenseGCNLayer(2, 1, bias=False, activation=torch.relu)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    a_hat = normalized_adjacency(path4.edge_index, 4)
    h = layer(path4.x, a_hat)
    xw = torch.tensor([1.0, 0.0, -1.0, 3.0])  # X W by hand
    expected = torch.relu(a_hat @ xw)
    assert torch.allclose(h.view(-1), expected)
    # node 3: (−1)/sqrt(3*2) + 3/2 > 0; node 2: 0/sqrt(9) ... computed explicitly:
    assert h[3].item() == __import__("pytest").approx(-1 / 6 ** 0.5 + 1.5, abs=1e-6)
