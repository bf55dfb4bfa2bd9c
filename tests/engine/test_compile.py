"""--compile: the compiled training forward computes what eager does (to float rounding) and
leaves the run's state dict (checkpoints) exactly as without it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convlens.engine import TrainConfig
from convlens.engine.compiled import compiled_forward
from convlens.engine.module import ClassifierModule
from convlens.models import create_model


@pytest.mark.slow  # Inductor compiles a forward and backward: 30-80 s on 2 shared cores
def test_compiled_step_matches_eager_to_rounding_and_keeps_state_dict_keys() -> None:
    torch.manual_seed(0)
    model = create_model("cnn", drop_rate=0.0).to(memory_format=torch.channels_last)  # no dropout: Inductor's RNG differs
    x = torch.randn(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,))
    grads = []
    for fwd in (model, compiled_forward(model)):
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(fwd(x), y)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (l0, g0), (l1, g1) = grads
    assert torch.allclose(l0, l1, rtol=1e-5, atol=1e-6)
    for a, b in zip(g0, g1):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5)  # BatchNorm backward sums in another order
    module = ClassifierModule(model, TrainConfig(compile=True), {}, ["test"])
    keys = set(module.state_dict())
    object.__setattr__(module, "train_forward", compiled_forward(module.model))
    assert set(module.state_dict()) == keys and not any("_orig_mod" in k for k in keys)
