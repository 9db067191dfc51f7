"""GPU check: ConvNCF training steps on CUDA vs CPU, and ONNX Runtime's CUDA execution provider.

Run on a machine with an NVIDIA GPU, after `pip install -e .`:  python scripts/gpu_check.py [out.json]
Needs no data: ids and weights are random (speed does not depend on them). It
  1. trains the paper's tower (d=64, C=32) for a few hundred steps on CUDA and on CPU: triples/s each;
  2. exports the model to ONNX, scores 65,536 pairs with ONNX Runtime on CUDA, checks that the session's
     providers really start with CUDA and that the scores match ONNX Runtime on CPU within 1e-4; pairs/s;
  3. ranks 512 users against Gowalla's 40,981 items through the scoring engine on CUDA (in this process,
     65,536 pairs per session.run): pairs/s and the projected time of Gowalla's full ranking on this GPU.
Exits non-zero when a check fails. Prints and writes a JSON summary.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import scipy.sparse as sp
import torch

from convncf_kedro.exporting.onnx_export import export_onnx
from convncf_kedro.models import ConvNCF, ConvNCFConfig, Phase
from convncf_kedro.serving.engine import RankSettings, rank_users
from convncf_kedro.serving.session import CUDA, create_session, onnx_block_scorer
from convncf_kedro.training.loop import optimisers_for, train_step

N_USERS, N_ITEMS = 943, 1682


def train_rate(device: torch.device, steps: int, batch: int, precision: str) -> float:
    torch.manual_seed(0)
    config = ConvNCFConfig(N_USERS, N_ITEMS, 64, 32, reg_embedding=1e-4, reg_conv=1e-4, reg_out=1e-4)
    model = ConvNCF(config).to(device)
    optimisers = optimisers_for(model, Phase(lr_embedding=0.01, lr_tower=0.01))
    generator = torch.Generator(device="cpu").manual_seed(0)

    def step() -> None:
        batch_ids = {k: torch.randint(0, n, (batch,), generator=generator).to(device)
                     for k, n in (("user", N_USERS), ("item", N_ITEMS), ("neg_item", N_ITEMS))}
        train_step(model, optimisers, batch_ids, precision)

    for _ in range(10):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def engine_on_gpu() -> dict:
    """Full ranking at Gowalla's catalogue size through the engine, fp32 graph on CUDA."""
    n_users, n_items = 29_858, 40_981
    torch.manual_seed(0)
    model = ConvNCF(ConvNCFConfig(n_users, n_items, 64, 32))
    graph = export_onnx(model.eval(), 18, {}).SerializeToString()
    seen = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    settings = RankSettings(10, batch_pairs=65_536, chunk_users=64, chunk_items=n_items, device="cuda")
    users = np.arange(512)
    list(rank_users(graph, seen, users[:64], settings, 64))  # warm-up: session and CUDA kernels
    start = time.perf_counter()
    parts = list(rank_users(graph, seen, users, settings, 128))
    rate = users.size * n_items / (time.perf_counter() - start)
    return {"engine_cuda_provider": parts[0].provider, "engine_cuda_pairs_per_s": round(rate),
            "gowalla_full_ranking_projected_s": round(n_users * n_items / rate)}


def main(out_path: str | None = None) -> int:
    summary: dict = {"cuda_available": torch.cuda.is_available()}
    if not torch.cuda.is_available():
        print(json.dumps(summary))  # noqa: T201
        return 1
    summary["gpu"] = torch.cuda.get_device_name(0)
    for precision in ("fp32", "bf16"):
        summary[f"train_triples_per_s_cuda_{precision}_batch4096"] = round(train_rate(torch.device("cuda"), 300, 4096, precision))
    summary["train_triples_per_s_cpu_fp32_batch256"] = round(train_rate(torch.device("cpu"), 30, 256, "fp32"))

    torch.manual_seed(0)
    model = ConvNCF(ConvNCFConfig(N_USERS, N_ITEMS, 64, 32))
    torch.nn.init.normal_(model.user_embedding.weight, std=0.3)
    torch.nn.init.normal_(model.item_embedding.weight, std=0.3)
    proto = export_onnx(model.eval(), 18, {"id_maps_sha256": "gpu-check"}).SerializeToString()
    gpu, cpu = create_session(proto, "cuda"), create_session(proto, "cpu")
    summary["onnx_providers_cuda_session"] = gpu.get_providers()
    users = np.arange(64, dtype=np.int64)
    items = np.arange(1024, dtype=np.int64)
    gpu_scores = onnx_block_scorer(gpu, 65536)(users, items)
    cpu_scores = onnx_block_scorer(cpu, 65536)(users, items)
    summary["onnx_cuda_vs_cpu_max_abs_diff"] = float(np.abs(gpu_scores - cpu_scores).max())
    start = time.perf_counter()
    for _ in range(10):
        onnx_block_scorer(gpu, 65536)(users, items)
    summary["onnx_cuda_pairs_per_s"] = round(10 * users.size * items.size / (time.perf_counter() - start))
    summary |= engine_on_gpu()
    ok = gpu.get_providers()[0] == CUDA and summary["onnx_cuda_vs_cpu_max_abs_diff"] <= 1e-4
    summary["ok"] = ok
    text = json.dumps(summary, indent=2)
    print(text)  # noqa: T201
    if out_path:
        with open(out_path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
