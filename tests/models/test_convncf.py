"""The ConvNCF module: tower shapes, the patch-GEMM tower against nn.Conv2d, loss, gradients, MF init."""

import math

import pytest
import torch

from convncf_kedro.models import MF, ConvNCF, ConvNCFBPRLoss, build_model


def random_model(d=64, channels=32, kernel_sizes=None, **kwargs) -> ConvNCF:
    torch.manual_seed(0)
    model = ConvNCF(40, 50, d, channels, kernel_sizes, **kwargs)
    torch.nn.init.normal_(model.user_embedding.weight)  # unit-scale maps, so differences are visible
    torch.nn.init.normal_(model.item_embedding.weight)
    return model


def pairs(n=64):
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 40, (n,), generator=generator), torch.randint(0, 50, (n,), generator=generator)


@pytest.mark.parametrize("d", [4, 8, 16, 32, 64, 128])
def test_paper_tower_halves_the_map_down_to_one_cell(d):
    model = ConvNCF(10, 20, d, channels=32)
    layers = list(model.conv_layers)
    assert len(layers) == int(math.log2(d))
    assert all(layer.kernel_size == (2, 2) and layer.stride == (2, 2) for layer in layers)
    x = torch.randn(3, 1, d, d)
    for layer in layers:
        x = layer(x)
    assert x.shape == (3, 32, 1, 1)
    expected = (10 + 20) * d + (4 * 1 * 32 + 32) + (len(layers) - 1) * (4 * 32 * 32 + 32) + (32 + 1)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("kernel_sizes", [None, [4, 4, 2, 2], [2, 4, 8], [8, 8]])
def test_patch_gemm_tower_equals_the_conv2d_tower(kernel_sizes):
    model = random_model(kernel_sizes=kernel_sizes)
    user, item = pairs()
    scores = model(user, item)
    assert scores.shape == (64,)
    torch.testing.assert_close(scores, model.forward_conv2d(user, item), rtol=1e-5, atol=1e-5)


def test_kernel_sizes_must_reduce_the_map_to_one_cell():
    with pytest.raises(ValueError, match=r"product must be 64"):
        ConvNCF(10, 20, 64, 32, kernel_sizes=[2, 2, 2])


def test_bpr_loss_is_the_sum_of_softplus_of_negative_margins():
    pos, neg = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
    # -ln σ(1) - ln σ(0) - ln σ(-2) = ln(1+e^-1) + ln 2 + ln(1+e^2)
    expected = math.log(1 + math.exp(-1)) + math.log(2) + math.log(1 + math.exp(2))
    assert ConvNCFBPRLoss()(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_loss_is_bpr_plus_each_l2_term():
    model = random_model(reg_embedding=0.1, reg_conv=0.2, reg_out=0.3)
    user, item = pairs(8)
    neg = (item + 1) % 50
    batch = {"user": user, "item": item, "neg_item": neg}
    bpr = ConvNCFBPRLoss()(model(user, item), model(user, neg))
    embeddings = sum(e.pow(2).sum() for e in (model.user_embedding(user), model.item_embedding(item), model.item_embedding(neg)))
    conv = sum(layer.weight.pow(2).sum() for layer in model.conv_layers)
    out = model.predict_layer.weight.pow(2).sum()
    torch.testing.assert_close(model.calculate_loss(batch), bpr + 0.1 * embeddings + 0.2 * conv + 0.3 * out)


def test_gradients_reach_every_parameter_but_the_output_bias():
    model = random_model(d=16, channels=8)
    user, item = pairs(32)
    model.calculate_loss({"user": user, "item": item, "neg_item": (item + 7) % 50}).backward()
    for name, parameter in model.named_parameters():
        if name == "predict_layer.bias":  # cancels in pos − neg: pairwise BPR never moves it
            assert parameter.grad.abs().sum() == 0
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_mf_identity_initialisation_scores_exactly_like_mf():
    mf = MF(40, 50, 64)
    torch.nn.init.normal_(mf.user_embedding.weight)
    torch.nn.init.normal_(mf.item_embedding.weight)
    model = ConvNCF(40, 50, 64, 32)
    model.init_from_mf(mf.user_embedding.weight, mf.item_embedding.weight, "mf_identity")
    user, item = pairs()
    torch.testing.assert_close(model(user, item), mf(user, item), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(model.forward_conv2d(user, item), mf(user, item), rtol=1e-5, atol=1e-4)


def test_random_initialisation_copies_only_the_embeddings():
    mf = MF(40, 50, 64)
    model = ConvNCF(40, 50, 64, 32)
    model.init_from_mf(mf.user_embedding.weight, mf.item_embedding.weight, "random")
    assert torch.equal(model.item_embedding.weight, mf.item_embedding.weight)
    assert model.predict_layer.weight.abs().sum() > 0


def test_mf_embeddings_of_another_size_are_rejected():
    with pytest.raises(ValueError, match="do not fit"):
        ConvNCF(40, 50, 64, 32).init_from_mf(torch.zeros(40, 32), torch.zeros(50, 32), "random")


def test_saved_model_rebuilds_with_the_same_scores():
    model = random_model(d=16, channels=8)
    saved = {"model_class": "ConvNCF", "hyperparameters": model.hyperparameters(), "state_dict": model.state_dict()}
    user, item = pairs()
    torch.testing.assert_close(build_model(saved)(user, item), model.eval()(user, item))


def test_l2_towards_the_initial_tower_is_zero_at_the_start_and_grows_with_distance():
    mf = MF(40, 50, 16)
    model = ConvNCF(40, 50, 16, 8, reg_embedding=0.0, reg_conv=2.0, reg_out=3.0, reg_anchor="init")
    model.init_from_mf(mf.user_embedding.weight, mf.item_embedding.weight, "mf_identity")
    user, item = pairs(4)
    assert model.reg_loss(user, item, item).item() == 0.0
    with torch.no_grad():
        model.conv_layers[1].weight[2, 3, 0, 1] += 0.5
        model.predict_layer.weight[0, 5] -= 0.1
    assert model.reg_loss(user, item, item).item() == pytest.approx(2.0 * 0.25 + 3.0 * 0.01, rel=1e-5)
    saved = {"model_class": "ConvNCF", "hyperparameters": model.hyperparameters(), "state_dict": model.state_dict()}
    assert torch.equal(build_model(saved).conv_anchor_1, model.conv_anchor_1)  # anchors travel with the model
