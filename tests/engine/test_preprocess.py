import torch

from convlens.engine.preprocess import BatchPreprocessor, random_translate


def test_normalises_with_the_given_statistics():
    p = BatchPreprocessor((0.5,), (0.25,))
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    assert p(x).flatten().tolist() == [-2.0, 2.0]


def test_random_translate_matches_a_per_image_reference():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    pad = 2
    torch.manual_seed(1)
    out = random_translate(x, pad)
    torch.manual_seed(1)
    oy = torch.randint(0, 2 * pad + 1, (6,))
    ox = torch.randint(0, 2 * pad + 1, (6,))
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    ref = torch.stack([padded[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8] for i in range(6)])
    assert torch.equal(out, ref)


def test_augmentation_only_in_training():
    p = BatchPreprocessor((0.0,), (1.0,), augment="crop-flip")
    x = torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(p(x), x.float() / 255)
    torch.manual_seed(0)
    assert not torch.equal(p(x, train=True), x.float() / 255)
