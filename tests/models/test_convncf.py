"""The models: tower shapes, the patch-GEMM tower against nn.Conv2d, loss, gradients, starts, saved form."""

import math

import pytest
import torch

from convncf_kedro.models import (
    MF,
    ConvNCF,
    ConvNCFBPRLoss,
    ConvNCFConfig,
    MFConfig,
    OutdatedModelError,
    Phase,
    load_model,
    saved_info,
)


def config(d=64, channels=32, kernel_sizes=None, **kwargs) -> ConvNCFConfig:
    return ConvNCFConfig(40, 50, d, channels, kernel_sizes, **kwargs)


def random_model(d=64, channels=32, kernel_sizes=None, **kwargs) -> ConvNCF:
    torch.manual_seed(0)
    model = ConvNCF(config(d, channels, kernel_sizes, **kwargs))
    torch.nn.init.normal_(model.user_embedding.weight)  # unit-scale maps, so differences are visible
    torch.nn.init.normal_(model.item_embedding.weight)
    return model


def trained_mf(d=64) -> MF:
    torch.manual_seed(1)
    mf = MF(MFConfig(40, 50, d))
    torch.nn.init.normal_(mf.user_embedding.weight)
    torch.nn.init.normal_(mf.item_embedding.weight)
    return mf


def pairs(n=64):
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 40, (n,), generator=generator), torch.randint(0, 50, (n,), generator=generator)


@pytest.mark.parametrize("d", [4, 8, 16, 32, 64, 128])
def test_paper_tower_halves_the_map_down_to_one_cell(d):
    model = ConvNCF(ConvNCFConfig(10, 20, d, channels=32))
    layers = list(model.conv_layers)
    assert len(layers) == int(math.log2(d))
    assert all(layer.kernel_size == (2, 2) and layer.stride == (2, 2) for layer in layers)
    x = torch.randn(3, 1, d, d)
    for layer in layers:
        x = layer(x)
    assert x.shape == (3, 32, 1, 1)
    expected = (10 + 20) * d + (4 * 1 * 32 + 32) + (len(layers) - 1) * (4 * 32 * 32 + 32) + (32 + 1)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("kernel_sizes", [None, (4, 4, 2, 2), (2, 4, 8), (8, 8)])
@pytest.mark.parametrize("residual", [False, True])
def test_patch_gemm_tower_equals_the_conv2d_tower(kernel_sizes, residual):
    model = random_model(kernel_sizes=kernel_sizes, residual=residual)
    user, item = pairs()
    scores = model(user, item)
    assert scores.shape == (64,)
    torch.testing.assert_close(scores, model.forward_conv2d(user, item), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(scores, model.exportable()(user, item), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("d", "kernel_sizes", "n_pairs"), [(64, None, 64), (8, None, 3), (64, (4, 4, 2, 2), 5)])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_first_layers_give_the_conv2d_towers_scores_and_gradients(d, kernel_sizes, n_pairs, threads):
    """On CPU in fp32 layers 1–2 run fused (numba): same scores and gradients for every parameter and embedding, in
    whole and partial blocks, on one thread or split over two."""
    model = random_model(d=d, kernel_sizes=kernel_sizes)
    user, item = pairs(n_pairs)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fused = [model(user, item), model.forward_conv2d(user, item)]
        gradients = []
        for scores in fused:
            model.zero_grad()
            (scores * torch.linspace(-1, 1, n_pairs)).sum().backward()
            gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(*fused, rtol=1e-5, atol=1e-4)
    for name, expected in gradients[1].items():
        torch.testing.assert_close(gradients[0][name], expected, rtol=1e-4, atol=1e-4, msg=name)


def test_fused_gradients_are_the_same_bits_on_one_thread_or_two():
    """A run's thread count is measured (one per free core), so it may differ between a killed run and its resume:
    the fused layers split the work by items, not threads, and sum the weights' gradients in the same order."""
    model = random_model(d=64)
    user, item = pairs(300)  # several tasks of SHARE_ITEMS pairs
    before, gradients = torch.get_num_threads(), []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model.zero_grad()
            (model(user, item) * torch.linspace(-1, 1, 300)).sum().backward()
            gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
    finally:
        torch.set_num_threads(before)
    for name, expected in gradients[1].items():
        assert torch.equal(gradients[0][name], expected), name


def test_kernel_sizes_must_reduce_the_map_to_one_cell():
    with pytest.raises(ValueError, match=r"product must be 64"):
        ConvNCFConfig(10, 20, 64, 32, kernel_sizes=(2, 2, 2))


def test_bpr_loss_is_the_sum_of_softplus_of_negative_margins():
    pos, neg = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
    # -ln σ(1) - ln σ(0) - ln σ(-2) = ln(1+e^-1) + ln 2 + ln(1+e^2)
    expected = math.log(1 + math.exp(-1)) + math.log(2) + math.log(1 + math.exp(2))
    assert ConvNCFBPRLoss()(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_loss_is_bpr_plus_the_authors_l2_terms_and_bpr_alone_unregularised():
    model = random_model(reg_embedding=0.1, reg_conv=0.2, reg_out=0.3)
    user, item = pairs(8)
    neg = (item + 1) % 50
    batch = {"user": user, "item": item, "neg_item": neg}
    bpr = ConvNCFBPRLoss()(model(user, item), model(user, neg))
    embeddings = sum(e.pow(2).sum() for e in (model.user_embedding(user), model.item_embedding(item), model.item_embedding(neg)))
    conv = sum(layer.weight.pow(2).sum() + layer.bias.pow(2).sum() for layer in model.conv_layers)
    out = model.predict_layer.weight.pow(2).sum() + model.predict_layer.bias.pow(2).sum()
    torch.testing.assert_close(model.calculate_loss(batch), bpr + 0.1 * embeddings + 0.2 * conv + 0.3 * out)
    torch.testing.assert_close(model.calculate_loss(batch, regularised=False), bpr)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse (as trained)"])
def test_one_lookup_per_table_gives_the_gradients_of_the_loss_as_written(sparse):
    """calculate_loss looks each table up once (the L2 reads the same rows); the gradients are those of the loss
    written out with a lookup per term, users and items repeated in the batch included."""
    written, once = random_model(reg_embedding=0.1, reg_conv=0.2), random_model(reg_embedding=0.1, reg_conv=0.2)
    once.load_state_dict(written.state_dict())
    for model in (written, once):
        model.user_embedding.sparse = model.item_embedding.sparse = sparse
    user, item = pairs(16)
    user, neg = user % 5, (item * 3) % 50  # users repeat, and some negatives are another triple's positive
    bpr = ConvNCFBPRLoss()(written(user, item), written(user, neg))
    (bpr + written.reg_loss(user, item, neg)).backward()
    once.calculate_loss({"user": user, "item": item, "neg_item": neg}).backward()
    for (name, expected), actual in zip(written.named_parameters(), once.parameters(), strict=True):
        torch.testing.assert_close(actual.grad.to_dense(), expected.grad.to_dense(), msg=name)


def test_gradients_reach_every_parameter_but_the_output_bias():
    model = random_model(d=16, channels=8)
    user, item = pairs(32)
    model.calculate_loss({"user": user, "item": item, "neg_item": (item + 7) % 50}, regularised=False).backward()
    for name, parameter in model.named_parameters():
        if name == "predict_layer.bias":  # cancels in pos − neg: pairwise BPR never moves it
            assert parameter.grad.abs().sum() == 0
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_mf_identity_start_scores_exactly_like_mf():
    mf = trained_mf()
    model = ConvNCF(config())
    model.start_from(mf, "mf_identity")
    user, item = pairs()
    torch.testing.assert_close(model(user, item), mf(user, item), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(model.forward_conv2d(user, item), mf(user, item), rtol=1e-5, atol=1e-4)


def test_residual_start_scores_exactly_like_mf_and_its_tower_learns_from_the_first_step():
    mf = trained_mf()
    model = ConvNCF(config(residual=True))
    model.start_from(mf, "truncated_normal")
    user, item = pairs()
    torch.testing.assert_close(model(user, item), mf(user, item), rtol=1e-6, atol=1e-6)
    model.calculate_loss({"user": user, "item": item, "neg_item": (item + 3) % 50}, regularised=False).backward()
    assert model.predict_layer.weight.grad.abs().sum() > 0  # the output layer moves off 0 at once


def test_authors_start_copies_embeddings_and_draws_the_tower_as_their_code_does():
    mf = trained_mf()
    torch.manual_seed(0)
    model = ConvNCF(config())
    model.start_from(mf, "truncated_normal")
    assert torch.equal(model.item_embedding.weight, mf.item_embedding.weight)
    weights = torch.cat([layer.weight.flatten() for layer in model.conv_layers])
    assert weights.abs().max() <= 0.2 and weights.std().item() == pytest.approx(0.088, abs=0.005)  # N(0, .1²) cut at 2σ
    assert all(torch.all(layer.bias == 0.1) for layer in model.conv_layers)
    with pytest.raises(ValueError, match="count MF's score twice"):
        ConvNCF(config(residual=True)).start_from(mf, "mf_identity")


def test_mf_embeddings_of_another_size_are_rejected():
    with pytest.raises(ValueError, match="do not fit"):
        ConvNCF(config()).start_from(trained_mf(d=32), "truncated_normal")


@pytest.mark.parametrize("residual", [False, True])
def test_saved_model_rebuilds_with_the_same_scores_and_extras(residual):
    model = random_model(d=16, channels=8, residual=residual)
    saved = model.saved(epoch=3, recipe="x")
    user, item = pairs()
    rebuilt = load_model(saved)
    assert isinstance(rebuilt, ConvNCF) and rebuilt.config == model.config
    torch.testing.assert_close(rebuilt(user, item), model.eval()(user, item))
    assert saved_info(saved).epoch == 3 and not hasattr(saved_info(saved), "state_dict")
    mf = trained_mf()
    torch.testing.assert_close(load_model(mf.saved())(user, item), mf(user, item))


def test_a_saved_model_of_another_config_is_not_loaded_for_resuming():
    with pytest.raises(ValueError, match="is not this ConvNCF"):
        random_model(d=16, channels=8).load_saved(random_model(d=16, channels=4).saved())


def test_mf_scores_a_block_with_one_matmul_equal_to_its_pairs():
    mf = trained_mf()
    users, items = torch.arange(5), torch.arange(7)
    block = mf.score_block(users, items)
    assert block.shape == (5, 7)
    torch.testing.assert_close(block[2, 3], mf(torch.tensor([2]), torch.tensor([3]))[0])
    model = random_model(d=16, channels=8)
    torch.testing.assert_close(model.score_block(users, items, batch_pairs=4)[4, 6], model(torch.tensor([4]), torch.tensor([6]))[0])


def test_a_zero_learning_rate_freezes_that_part():
    model = random_model(d=16, channels=8)
    (optimizer,) = model.configure_optimizers(Phase(lr_embedding=0.0, lr_tower=0.01, adagrad_initial_accumulator=0.1))
    assert not model.user_embedding.weight.requires_grad and model.predict_layer.weight.requires_grad
    assert optimizer.defaults["initial_accumulator_value"] == 0.1
    before = model.item_embedding.weight.clone()
    user, item = pairs(16)
    model.calculate_loss({"user": user, "item": item, "neg_item": (item + 1) % 50}).backward()
    optimizer.step()
    assert torch.equal(model.item_embedding.weight, before)
    with pytest.raises(ValueError, match="trains nothing"):
        model.configure_optimizers(Phase(lr_embedding=0.0, lr_tower=0.0))


def test_a_model_saved_in_another_format_is_refused_with_what_to_do():
    saved = random_model(d=16, channels=8).saved()
    old = {k: v for k, v in saved.items() if k != "format"}  # e.g. a file from before the format existed
    for read in (load_model, saved_info, random_model(d=16, channels=8).load_saved):
        with pytest.raises(OutdatedModelError, match=r"saved in format 1, this version reads format 2: re-run"):
            read(old)
