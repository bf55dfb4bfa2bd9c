"""`convlens shapes ...` and `convlens conv demo ...` through the real entry point."""
from __future__ import annotations

import csv
import json


def test_shapes_conv_formula(run_cli):
    rc, out, err = run_cli("shapes", "conv", "--input", "32x32x3", "--filters", "3", "--kernel", "5", "--stride", "1", "--padding", "2")
    assert rc == 0 and err == ""
    assert "W2 = (32 - 5 + 2*2)/1 + 1 = 31/1 + 1 = 32" in out
    assert "output 32x32x3" in out and "parameters 228" in out and "torch: 32x32x3, 228 parameters (same)" in out


def test_shapes_conv_refused_with_arithmetic(run_cli):
    rc, out, err = run_cli("shapes", "conv", "--input", "32x32x3", "--filters", "3", "--kernel", "5", "--stride", "2")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("convlens: error: W2 = (32 - 5 + 2*0)/2 + 1 = 27/2 + 1 = 14.5 is not a whole number")
    rc, out, err = run_cli("shapes", "conv", "--input", "32x32x3", "--filters", "3", "--kernel", "5", "--stride", "2", "--floor")
    assert rc == 0 and "floor = 14" in out


def test_shapes_pool(run_cli, tmp_path):
    rc, out, _ = run_cli("shapes", "pool", "--input", "4x4x1", "--kernel", "2", "--json", str(tmp_path / "p.json"))
    assert rc == 0 and "output 2x2x1" in out and "D2 = D1 = 1" in out
    assert json.loads((tmp_path / "p.json").read_text())["output"] == [2, 2, 1]
    rc, _, err = run_cli("shapes", "pool", "--input", "55x55x96", "--kernel", "3", "--stride", "2", "--filters", "4")
    assert rc == 2 and "--filters does not apply" in err


def test_shapes_alexnet(run_cli, tmp_path):
    rc, out, err = run_cli("shapes", "alexnet", "--no-check", "--csv", str(tmp_path / "a.csv"), "--json", str(tmp_path / "a.json"),
                           "--plot", str(tmp_path / "a.png"))
    assert rc == 0
    for number in ("62,378,344", "61,100,840", "34,848", "614,400", "884,736", "1,327,104", "37,748,736", "16,777,216",
                   "4,096,000", "55x55x96", "27x27x96", "13x13x256", "6x6x256", "227x227x3"):
        assert number in out, number
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    chapter = [r for r in rows if r["network"] == "chapter"]
    assert sum(int(r["params"]) for r in chapter) == 62_378_344
    assert sum(int(r["params"]) for r in rows if r["network"] == "torchvision") == 61_100_840
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["chapter"]["totals"]["params"] == 62_378_344
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_shapes_model_with_files(run_cli, tmp_path):
    rc, out, err = run_cli("shapes", "tv/resnet18", "--input", "3x64x64", "--batch-size", "32",
                           "--csv", str(tmp_path / "r.csv"), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png"))
    assert rc == 0, err
    assert "11,689,512" in out and "cross-checks" in out and "differs" not in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["totals"]["params"] == 11_689_512 and data["batch_size"] == 32
    assert all(c["match"] for c in data["checks"])
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == len(data["rows"]) and rows[0]["output_shape"] == "64x32x32"
    assert int(rows[0]["activation_bytes"]) == 32 * 64 * 32 * 32 * 4
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_shapes_user_mistakes(run_cli, tmp_path):
    for argv, text in ((("shapes", "no_such_net"), "unknown model 'no_such_net'"),
                       (("shapes", str(tmp_path)), "no config.json"),
                       (("shapes", "cnn", "--input", "1x4x4", "--no-check"), "--input 1x4x4"),
                       (("shapes", "conv", "--input", "32x32x3"), "needs --input W1xH1xD1 and --kernel"),
                       (("shapes", "alexnet", "--input", "3x224x224"), "tv/alexnet")):
        rc, out, err = run_cli(*argv)
        assert rc == 2 and text in err and err.count("\n") == 1, (argv, err)


def test_conv_demos(run_cli, tmp_path):
    rc, out, _ = run_cli("conv", "demo", "pool", "--plot", str(tmp_path / "pool.png"), "--json", str(tmp_path / "pool.json"))
    assert rc == 0 and "[ 9  2 ]" in out and "[ 3.75  1.25 ]" in out
    assert json.loads((tmp_path / "pool.json").read_text())["arrays"]["average pooling"] == [[3.75, 1.25], [3.75, 2.0]]
    assert (tmp_path / "pool.png").read_bytes()[:4] == b"\x89PNG"
    rc, out, _ = run_cli("conv", "demo", "1d")
    assert rc == 0 and "[ 1  1  1 ]" in out
    rc, out, _ = run_cli("conv", "demo", "3d", "--plot", str(tmp_path / "3d.png"))
    assert rc == 0 and "one 2D map per filter" in out and (tmp_path / "3d.png").stat().st_size > 1000


def test_shapes_of_a_trained_run_folder(run_cli, tmp_path):
    """A real (tiny) run of the engine on Fashion-MNIST, then `convlens shapes RUN`."""
    from convlens.engine import TrainConfig, train

    cfg = TrainConfig(model="dnn", epochs=1, batch_size=100, val_size=100, limit_train=600, limit_test=200,
                      device="cpu", out=str(tmp_path), name="tiny", progress=False, eval_batch_size=200)
    res = train(cfg, report=False)
    rc, out, err = run_cli("shapes", str(res.run.path), "--json", str(tmp_path / "run.json"))
    assert rc == 0, err
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["totals"]["params"] == 235_146 and data["input_shape"] == [1, 28, 28]
    assert "dnn (run tiny)" in data["model"] and "235,146" in out
    rc, out, err = run_cli("shapes", str(res.run.path), "--which", "last", "--no-check")
    assert rc == 0 and "235,146" in out
