import torch

from convlens.data import EpochSeededSampler, ImageTensors, tensor_loader


def _toy(n=50, classes=5):
    imgs = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ImageTensors(imgs, torch.arange(n) % classes, [str(c) for c in range(classes)], name="toy")


def test_split_is_stratified_disjoint_and_seeded():
    d = _toy(100)
    tr, va = d.split(20, seed=3)
    assert len(tr) == 80 and len(va) == 20
    assert set(va.class_counts().values()) == {4}
    assert not set(tr.images[:, 0, 0, 0].tolist()) & set(va.images[:, 0, 0, 0].tolist())
    tr2, va2 = d.split(20, seed=3)
    assert torch.equal(va.images, va2.images)
    assert not torch.equal(va.images, d.split(20, seed=4)[1].images)


def test_loader_batches_are_slices_and_order_depends_on_epoch_only():
    d = _toy(50)
    loader = tensor_loader(d, batch_size=16, shuffle=True, seed=1)
    x, y = next(iter(loader))
    assert x.dtype == torch.uint8 and x.shape == (16, 1, 2, 2)
    assert torch.equal(y, x[:, 0, 0, 0].long() % 5)
    order = lambda ep: (loader.sampler.set_epoch(ep), torch.cat([b[0][:, 0, 0, 0] for b in loader]))[1]  # noqa: E731
    assert torch.equal(order(2), order(2)) and not torch.equal(order(2), order(3))
    assert sorted(order(5).tolist()) == list(range(50))


def test_unshuffled_sampler_is_identity():
    s = EpochSeededSampler(7, shuffle=False)
    assert list(s) == list(range(7))
