"""The fast training step (the map gathered in patch order, layers 1–2 fused on CPU, whole batches or chunks) trains
the same model as the step it replaced (outer product, one permute copy into patch order, every layer a torch GEMM,
whole batches): one epoch at the shipped sizes (d = 64, C = 32, fp32, the authors' recipe) on 150 real users."""

import numpy as np
import pandas as pd
import pytest
import torch

from convncf_kedro.config.params import PhaseParams, TrainingParams
from convncf_kedro.interactions.prepare import positives_matrix, sample_negatives
from convncf_kedro.models import MF, ConvNCF, ConvNCFConfig, MFConfig
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.training.loop import fit
from convncf_kedro.training.stage import loop_phases, loop_settings


class PermuteCopyConvNCF(ConvNCF):
    """The tower as it was before (commit 1a3d17f): E = p qᵀ by bmm, then a 2·log2(d)-dimensional permute copy."""

    def tower(self, p, q):
        batch, kernel_sizes = p.shape[0], self.config.kernel_sizes
        n = len(kernel_sizes)
        digit_shape = [*reversed(kernel_sizes), *reversed(kernel_sizes)]
        patch_order = [0, *(d for level in range(n) for d in (1 + level, 1 + n + level))]
        x = torch.bmm(p.unsqueeze(2), q.unsqueeze(1)).view(batch, *digit_shape).permute(patch_order).reshape(-1, 1)
        for conv in self.conv_layers:
            k, c_in = conv.kernel_size[0], conv.in_channels
            weight = conv.weight.permute(2, 3, 1, 0).reshape(k * k * c_in, conv.out_channels)
            x = torch.addmm(conv.bias, x.reshape(-1, k * k * c_in), weight).relu_()
        return self.predict_layer(self.dropout(x.reshape(batch, self.config.channels))).squeeze(-1)


@pytest.fixture(scope="module")
def slice_of_ml_100k(shared_datasets):
    raw = pd.read_csv(shared_datasets / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    raw = raw[raw["user"] <= 150].assign(user=lambda f: f["user"] - 1, item=lambda f: f["item"] - 1)
    latest = raw.sort_values("ts").groupby("user").tail(1)
    matrix = positives_matrix([raw.drop(latest.index)], 150, 1682)
    negatives = sample_negatives(latest["user"].to_numpy(), positives_matrix([raw], 150, 1682), 99, np.random.default_rng(0))
    return matrix, *candidate_matrix(latest[["user", "item"]], negatives)


def one_epoch(model_class, data, chunk_triples):
    matrix, users, items = data
    torch.manual_seed(5)
    mf = MF(MFConfig(150, 1682, 64, init_std=0.1))
    model = model_class(ConvNCFConfig(150, 1682, 64, 32, reg_embedding=0.01, reg_conv=1.0, reg_out=11.0))
    model.start_from(mf, "truncated_normal")
    phases = [PhaseParams(optimizer="adagrad", adagrad_initial_accumulator=0.1, lr_embedding=0.05, lr_tower=0.05)]
    training = TrainingParams(epochs=1, patience=5, select_start=False, seed=3, threads=2, chunk_triples=chunk_triples)
    return list(fit(model, matrix, users, items, 512, loop_phases(phases), loop_settings(training), torch.device("cpu"), "convncf"))[-1]


@pytest.fixture(scope="module")
def reference_epoch(slice_of_ml_100k):
    return one_epoch(PermuteCopyConvNCF, slice_of_ml_100k, chunk_triples=None)


@pytest.mark.parametrize("chunk_triples", [None, 32])
def test_one_epoch_matches_the_replaced_step(slice_of_ml_100k, reference_epoch, chunk_triples):
    reference = reference_epoch
    fast = one_epoch(ConvNCF, slice_of_ml_100k, chunk_triples=chunk_triples)
    assert fast["history"][1]["loss"] == pytest.approx(reference["history"][1]["loss"], rel=1e-4)
    assert round(fast["history"][1]["ndcg@10"], 3) == round(reference["history"][1]["ndcg@10"], 3)
    for name, tensor in reference["model"]["state_dict"].items():
        torch.testing.assert_close(fast["model"]["state_dict"][name], tensor, rtol=1e-3, atol=1e-4)
