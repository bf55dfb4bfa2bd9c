"""hardware.py's labels and ratios: the AVX2 emulation is named as such, shares are right."""
from __future__ import annotations

import pytest

from convlens import hardware
from convlens.models import create_model


def test_cap_labels_figures_as_emulated_avx2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert hardware.machine_label() == f"AVX2 (emulated by ISA cap on {hardware.cpu_model()})"
    line = hardware.hardware_line(measure_peak=False)
    assert "capped: ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 = AVX2 (emulated" in line
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert "emulated" not in hardware.machine_label() and "capped" not in hardware.hardware_line(measure_peak=False)


def test_share_of_peak_and_forward_flops_of_the_chapter_cnn() -> None:
    assert hardware.share_of_peak(50e9, 1.0, 200.0) == "50 GFLOP/s = 25% of the fp32 matmul peak"
    # FashionCNN: conv1 28*28*32*9 + conv2 12*12*64*288 + fc 2304*600 + 600*120 + 120*10 MACs
    macs = 28 * 28 * 32 * 9 + 12 * 12 * 64 * 288 + 2304 * 600 + 600 * 120 + 120 * 10
    flops = hardware.forward_flops(create_model("cnn"), (1, 28, 28))
    assert flops == pytest.approx(2 * macs, rel=0.05)  # BatchNorm/ReLU/pool add a little or nothing
