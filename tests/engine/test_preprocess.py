import torch

from convlens.engine.preprocess import BatchPreprocessor, random_translate


def test_normalises_with_the_given_statistics():
    p = BatchPreprocessor((0.5,), (0.25,))
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    assert p(x).flatten().tolist() == [-2.0, 2.0]
    assert torch.allclose(p(x.float() / 255), p(x))  # floats in [0, 1] are taken as already scaled


def test_fused_normalisation_equals_the_textbook_formula():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    p = BatchPreprocessor(mean, std)
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    ref = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(p(x), ref, atol=1e-5)


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
    assert torch.allclose(p(x), x.float() / 255, atol=1e-6)
    torch.manual_seed(0)
    assert not torch.allclose(p(x, train=True), x.float() / 255, atol=1e-6)


def test_images_are_fitted_to_the_models_channels_and_size():
    from convlens.data import ImageTensors
    from convlens.data.prepare import fit_to_input

    rgb = torch.zeros(2, 3, 28, 28, dtype=torch.uint8)
    rgb[:, 0] = 255  # pure red
    grey = fit_to_input(ImageTensors(rgb, torch.zeros(2), ["a"]), (1, 28, 28)).images
    assert grey.shape == (2, 1, 28, 28) and int(grey[0, 0, 0, 0]) == round(0.299 * 255)
    one = torch.full((2, 1, 28, 28), 7, dtype=torch.uint8)
    up = fit_to_input(ImageTensors(one, torch.zeros(2), ["a"]), (3, 32, 32)).images
    assert up.shape == (2, 3, 32, 32) and int(up.min()) == int(up.max()) == 7
