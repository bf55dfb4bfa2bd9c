"""Every notebook runs end to end (smoke mode) and shows what its chapter section is about;
the committed .ipynb are exactly what scripts/build-notebooks makes of the .py sources.

Each notebooks/*.py is read by jupytext and executed by nbclient in a fresh python3 kernel of
this interpreter, in a scratch folder, with ``CONVLENS_SMOKE=1``. A new notebook needs an
entry in ``EXPECT`` (what its outputs must show); a notebook without one fails here.
"""
from __future__ import annotations

import json
import os
import re
import runpy
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))
BUILD = runpy.run_path(str(REPO / "scripts" / "build-notebooks"))


class Outputs:
    """A run notebook's outputs: all text (stdout, stderr, reprs) and the number of pictures."""

    def __init__(self, nb) -> None:
        self.text, self.images = "", 0
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                self.text += out.get("text", "") + "\n"
                data = out.get("data", {})
                self.text += data.get("text/plain", "") + "\n"
                self.images += "image/png" in data

    def percent(self, pattern: str) -> float:
        """The percentage captured by ``pattern`` (one group), as a fraction."""
        m = re.search(pattern, self.text)
        assert m, f"no match for {pattern!r} in the notebook's output:\n{self.text[-3000:]}"
        return float(m.group(1)) / 100


def basics(o: Outputs) -> None:
    assert "AlexNet (chapter): 62,378,344 parameters" in o.text
    assert "W2 = (32 - 5 + 2*2)/1 + 1 = 31/1 + 1 = 32" in o.text and "PyTorch agrees: True" in o.text
    assert "Conv-1     55x55x96        34,944" in o.text
    assert "tv/resnet18: 11,689,512 parameters" in o.text
    assert "layers checked against PyTorch: 21 mismatches: []" in o.text
    assert o.images == 6  # AlexNet, ResNet-18's table, 4 demos


def dnn_vs_cnn(o: Outputs) -> None:
    # smoke: 1 epoch on 3,000 images; 10 classes, so chance is 10%
    assert o.percent(r"dnn: test accuracy ([\d.]+)%") > 0.65
    assert o.percent(r"cnn: test accuracy ([\d.]+)%") > 0.65
    assert o.percent(r"CNN on 2,000 test images: ([\d.]+)%") > 0.65
    assert o.percent(r"evaluated in train mode \(the chapter\): ([\d.]+)%") > 0.3
    assert o.images == 3  # curves, confusion matrix, wrong images


def transfer(o: Outputs) -> None:
    assert o.percent(r"feature extraction: test accuracy ([\d.]+)% on 40 photos") >= 0.85
    assert o.percent(r"cat.jpg: Cat ([\d.]+)%") > 0.9  # the chapter's cat, first line: the top class
    assert o.images == 1


def explain(o: Outputs) -> None:
    assert re.search(r"^tabby, tabby cat: [\d.]+%", o.text, re.MULTILINE), o.text[-2000:]
    assert float(re.search(r"trained vs randomised: (-?[\d.]+)", o.text).group(1)) < 0.5
    assert o.images == 4  # CAM, feature maps, filters, sanity check


def gcn(o: Outputs) -> None:
    assert "same as GCNConv: True" in o.text
    assert o.percent(r"karate: ([\d.]+)% of the 32 unlabelled") >= 0.9
    assert o.percent(r"cora: test accuracy ([\d.]+)% on 1,000 papers") >= 0.7  # 50 epochs; 81.5% at 200
    assert o.percent(r"mutag: ([\d.]+)% ±") >= 0.7
    assert o.images == 4  # karate matrices and graph, Cora curves, Cora embedding


def resnet(o: Outputs) -> None:
    assert "resnet20: 269,722 parameters" in o.text and "resnet56: 853,018 parameters" in o.text
    assert re.search(r"resnet20: 269,722 parameters, 40\.\dM multiply-adds per image", o.text), o.text[-2000:]
    assert "tv/resnet18: 1.81 G multiply-adds" in o.text and "tv/resnet50: 4.09 G multiply-adds" in o.text
    assert "option A" in o.text  # where a stage halves the map, the shortcut pads zero channels
    assert "cifar10: 1,200 training and 1,200 test images" in o.text
    for name in ("plain20", "plain56", "resnet20", "resnet56"):
        assert re.search(rf"{name}: final training error [\d.]+%, test accuracy [\d.]+%", o.text)
    # smoke: three epochs of a tiny airbench-style net on 1,200 images (33% measured); chance is 10%
    assert o.percent(r"fast recipe: test accuracy ([\d.]+)%") > 0.2
    assert o.images >= 2  # CIFAR-10 test images, training error per epoch


EXPECT: dict[str, Callable[[Outputs], None]] = {
    "01_basics_shapes": basics, "02_dnn_vs_cnn": dnn_vs_cnn, "03_transfer_learning": transfer,
    "04_explain": explain, "05_gcn": gcn, "06_resnet": resnet,
}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernel spec for this interpreter, the source tree on its path, one shared feature cache."""
    import convlens

    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "convlens-test"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "convlens tests", "language": "python"}))
    src = str(Path(convlens.__file__).resolve().parents[1])
    env = {"JUPYTER_PATH": str(root), "CONVLENS_SMOKE": "1", "CONVLENS_CACHE": str(root / "cache"),
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           # one torch thread: the smoke workloads are small, and two threads on a 2-core machine where
           # another job holds a core ran the notebooks 3x slower (401 s instead of ~130 s)
           "CONVLENS_THREADS": os.environ.get("CONVLENS_THREADS", "1"), "CONVLENS_LANG": "en",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_runs_and_shows_its_results(source, kernel_env, tmp_path, monkeypatch):
    import jupytext
    import nbclient

    check = EXPECT.get(source.stem)
    assert check is not None, f"{source.name}: add what its outputs must show to EXPECT in {__file__}"
    nb = jupytext.read(source)
    monkeypatch.chdir(tmp_path)  # run folders go to the scratch folder
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name="convlens-test", timeout=240, resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{source.name}: {time.perf_counter() - t0:.1f} s")
    check(Outputs(nb))


def test_sources_and_expectations_match():
    assert len(SOURCES) >= 5
    assert set(EXPECT) <= {p.stem for p in SOURCES}, "EXPECT names a notebook that does not exist"


def test_every_notebook_starts_with_the_same_colab_setup_cell():
    import jupytext

    firsts = {}
    for p in SOURCES:
        code = [c.source for c in jupytext.read(p).cells if c.cell_type == "code"]
        firsts[p.name] = code[0]
        assert code[0].startswith("# Setup.") and 'find_spec("convlens") is None' in code[0], p.name
        assert 'SMOKE = os.environ.get("CONVLENS_SMOKE") == "1"' in code[0], p.name
    assert len(set(firsts.values())) == 1, f"the first cells differ: {sorted(firsts)}"


def test_committed_ipynb_match_their_sources(tmp_path):
    stale = BUILD["out_of_sync"]()
    assert not stale, f"run scripts/build-notebooks: out of sync {[p.name for p in stale]}"
    for p in SOURCES:
        nb = json.loads(p.with_suffix(".ipynb").read_text(encoding="utf-8"))
        assert all(not c.get("outputs") for c in nb["cells"]), f"{p.with_suffix('.ipynb').name} holds outputs"


def test_the_sync_check_fails_on_an_edited_source(tmp_path):
    """The check is real: a source edited without rebuilding is reported."""
    import shutil

    src = SOURCES[0]
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.with_suffix(".ipynb"), tmp_path / src.with_suffix(".ipynb").name)
    assert BUILD["out_of_sync"](tmp_path) == []
    (tmp_path / src.name).write_text(src.read_text(encoding="utf-8") + "\n# %%\nprint('new cell')\n", encoding="utf-8")
    assert BUILD["out_of_sync"](tmp_path) == [tmp_path / src.with_suffix(".ipynb").name]
    assert BUILD["build"](tmp_path) == [tmp_path / src.with_suffix(".ipynb").name]
    assert BUILD["out_of_sync"](tmp_path) == []
