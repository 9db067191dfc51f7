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


def test_threads_left_unset_take_one_per_core_other_work_leaves_free(monkeypatch):
    cores = sorted(runtime.os.sched_getaffinity(0))
    busy_first = [100.0 if core == cores[0] else 3.0 for core in range(max(cores) + 1)]
    monkeypatch.setattr(runtime.psutil, "cpu_percent", lambda interval, percpu: busy_first)
    runtime.configure(None, torch.device("cpu"))
    assert torch.get_num_threads() == max(1, len(cores) - 1)
    monkeypatch.setattr(runtime.psutil, "cpu_percent", lambda interval, percpu: [100.0] * (max(cores) + 1))
    runtime.configure(None, torch.device("cpu"))
    assert torch.get_num_threads() == 1  # never zero
    runtime.configure(3, torch.device("cpu"))
    assert torch.get_num_threads() == 3  # a count that is given is kept


def test_precision_auto_is_tried_only_where_bf16_is_native(monkeypatch, caplog):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "native_bf16", lambda device: False)
    assert runtime.training_precision("auto", cpu) == "fp32"  # emulated bf16 is dozens of times slower: never tried
    assert runtime.training_precision("bf16", cpu) == "bf16"  # asked for: kept, with a warning
    assert "has no bf16 arithmetic" in caplog.text
    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)
    assert runtime.training_precision("auto", cpu) == "auto"  # the first epoch decides (training/loop.py)
    assert runtime.training_precision("fp32", cpu) == "fp32"


def test_native_bf16_reads_the_cpu_flags():
    flags = next(line for line in open("/proc/cpuinfo", encoding="utf-8") if line.startswith("flags")).split()
    assert runtime.native_bf16(torch.device("cpu")) == bool({"avx512_bf16", "amx_bf16"} & set(flags))
