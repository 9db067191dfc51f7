"""How torch is set up for a run on the CPU."""

import torch

from convncf_kedro.training import runtime


def test_cpu_runs_compute_denormal_floats_as_zero():
    torch.set_flush_denormal(False)  # as a fresh process starts (earlier runs in this one may have set it)
    denormal = torch.tensor([1e-40])  # below float32's smallest normal (1.2e-38), above 0
    assert denormal.item() != 0
    runtime.configure(None, torch.device("cpu"))
    try:
        assert (denormal * 1.0).item() == 0.0  # the slow denormal path is never taken
    finally:
        torch.set_flush_denormal(False)
