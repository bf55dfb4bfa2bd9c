"""convlens._runtime: the allocator tuning every verb applies at start-up."""
import platform
import subprocess
import sys

import pytest

STEPS = """
import resource, torch
from convlens._runtime import tune_allocator
assert tune_allocator()
from convlens.models import create_model
torch.set_num_threads(1)
model = create_model("cnn").train()
opt = torch.optim.Adam(model.parameters())
x, y = torch.randn(100, 1, 28, 28), torch.randint(0, 10, (100,))
def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_tuned_allocator_keeps_freed_activations_instead_of_faulting_them_back_in():
    # One training step of the chapter CNN frees and reallocates ~40 MB of activations (10,000 pages).
    # glibc returning them to the OS showed as 7,000-10,700 page faults a step and a 1.4x slower step;
    # kept, a step faults 0-300 times on a quiet machine, up to ~600 under load.
    out = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, check=True)
    faults_per_step = float(out.stdout.strip())
    assert faults_per_step < 3000, faults_per_step


FLUSH = """
import torch
from convlens._runtime import denormals_flushed, flush_denormals
torch.set_num_threads(2)
a = torch.randn(512, 512); (a @ a).sum()  # the OpenMP pool exists before the flag is set
tiny = torch.full((4_000_000,), torch.finfo(torch.float32).tiny)  # halved: subnormal, or 0 where flushed
def flushed_share(): return float(((tiny * 0.5) == 0).float().mean())
torch.set_flush_denormal(True)
main_only = flushed_share()
torch.set_flush_denormal(False)
with flush_denormals() as on:
    inside = (on, flushed_share(), denormals_flushed())
with flush_denormals(enabled=False) as off:
    disabled = (off, flushed_share())
print(main_only, *inside, *disabled, flushed_share(), denormals_flushed())
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="FTZ/DAZ is x86's")
def test_flush_denormals_reaches_torch_worker_threads_and_is_restored():
    # The flag lives in each thread's MXCSR: set on the main thread alone, the elementwise op's other
    # half (run by the OpenMP worker) still made subnormals; Adam's stuck moments are updated the same way.
    out = subprocess.run([sys.executable, "-c", FLUSH], capture_output=True, text=True, check=True)
    main_only, on, inside, flagged, off, disabled, after, flagged_after = out.stdout.split()
    assert float(main_only) < 1.0  # the worker's share was not flushed: what the context manager fixes
    assert (on, float(inside), flagged) == ("True", 1.0, "True")
    assert (off, float(disabled)) == ("False", 0.0)
    assert (float(after), flagged_after) == (0.0, "False")
