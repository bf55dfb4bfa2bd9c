"""`convlens train --data FOLDER`: an ImageFolder layout goes through the same engine."""
import numpy as np
import pytest
from PIL import Image

from convlens.engine import TrainConfig, load_run_model, train


@pytest.fixture()
def shapes_folder(tmp_path):
    """Two classes that a CNN separates at once: bright squares vs dark squares, 40 each."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 12)):
        for cls, level in (("bright", 220), ("dark", 30)):
            d = tmp_path / "data" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                a = np.clip(rng.normal(level, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i}.png")
    return tmp_path / "data"


def test_image_folder_trains_a_model_shaped_by_the_data(shapes_folder, tmp_path):
    res = train(TrainConfig(data=str(shapes_folder), model="cnn", epochs=2, batch_size=16, val_size=8,
                            out=str(tmp_path / "runs"), name="folder", progress=False, threads=2), report=False)
    assert res.meta["classes"] == ["bright", "dark"]
    assert res.test_acc == 1.0
    s = res.run.summary()
    assert s["train_images"] == 72 and s["val_images"] == 8 and s["test_images"] == 24
    model, meta = load_run_model(res.run.path)
    # from scratch: the model takes the folder's own colour and size (40 px RGB), never Fashion-MNIST's
    assert meta["pretrained_cfg"]["input_size"] == (3, 40, 40) and model.num_classes == 2
