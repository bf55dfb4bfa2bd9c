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


def test_many_unreadable_files_are_counted_not_each_printed(shapes_folder, tmp_path, capsys):
    """A folder given by mistake holds thousands of non-images: the terminal names 10, the report 20,
    summary.json every one."""
    for i in range(25):
        (shapes_folder / "train" / "bright" / f"notes{i:02d}.txt").write_text("not an image")
    res = train(TrainConfig(data=str(shapes_folder), model="cnn", epochs=1, batch_size=16, val_size=8,
                            out=str(tmp_path / "runs"), name="junk", progress=False, threads=2))
    out = capsys.readouterr()
    printed = out.out + out.err
    assert "skipped 25 file(s)" in printed and "... and 15 more" in printed
    assert sum(f"notes{i:02d}.txt" in printed for i in range(25)) == 10
    skipped = res.run.summary()["skipped_files"]
    assert len(skipped) == 25 and all("not an image" in s for s in skipped)
    page = (res.run.path / "report.html").read_text()
    assert sum(f"notes{i:02d}.txt" in page for i in range(25)) == 20 and "... and 5 more" in page
