"""The BPR training loop shared by MF pretraining and every ConvNCF recipe: phases, validation, early stopping.

:func:`fit` is a generator: after every epoch it yields a checkpoint (model, optimiser state,
history, best model so far), which the Kedro node saves through the catalog. A run resumed from such
a checkpoint continues exactly where the saved one stopped: each epoch's negatives and dropout masks
are seeded by (seed, epoch), not by what ran before. :func:`train_step` is the one training step;
benchmarks and the GPU check time that same function. The loop takes its own small settings
(:class:`LoopPhase`, :class:`LoopSettings`); ``training/stage.py`` builds them from the parameters.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from convncf_kedro.models import BPRRecommender, Phase
from convncf_kedro.models.scoring import autocast, pair_scorer
from convncf_kedro.ranking.sampled import evaluate_sampled

from .sampler import sample_triples

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LoopPhase:
    """A stretch of epochs with fresh optimisers."""

    optimiser: Phase  # the model's optimiser settings
    epochs: int | None  # None: the rest of training (the last phase)
    warmup_steps: int  # linear learning-rate warm-up
    regularised: bool  # False: BPR alone, no L2


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """How long the loop trains, when it validates and selects, and how a step runs."""

    epochs: int  # the cap
    patience: int  # validation checks without improvement before stopping
    validate_every: int  # epochs between checks (the last epoch is always checked)
    min_epochs: int  # never stop early before this epoch
    select_start: bool  # the untrained start (epoch 0) may be the selected epoch
    selection_metric: str
    eval_batch_pairs: int
    chunk_triples: int | None
    precision: str  # fp32 | bf16 | auto: the first epoch trains in both, bf16 kept where it validates like fp32
    seed: int
    log_every_seconds: float
    time_budget_minutes: float | None  # no epoch starts that would end past it, and one that reaches it stops there (None: no limit)


RATE_AFTER_BATCHES = 20  # the step rate a stage's projected time is computed from, after a short warm-up


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


Optimisers = tuple[list[torch.optim.Optimizer], list[torch.optim.lr_scheduler.LRScheduler]]


def optimisers_for(model: BPRRecommender, phase: Phase, warmup_steps: int = 0) -> Optimisers:
    """The model's fresh optimisers for one phase, each with its linear learning-rate warm-up."""
    optimizers = model.configure_optimizers(phase)
    warmup = max(warmup_steps, 1)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda step: min(1.0, (step + 1) / warmup)) for o in optimizers]
    return optimizers, schedulers


def train_step(
    model: BPRRecommender, optimisers: Optimisers, batch: dict[str, torch.Tensor], precision: str,
    regularised: bool = True, chunk_triples: int | None = None,
) -> float:
    """One BPR step on a batch of (user, item, neg_item) triples; returns the loss, raises if it is not finite.

    With ``chunk_triples`` the batch goes forward and backward that many triples at a time, the gradients adding
    up to the whole batch's before the one optimiser step: the same step, with activations small enough to stay
    in cache (ConvNCF's first layer writes 128 KiB a pair).
    """
    optimizers, schedulers = optimisers
    device = batch["user"].device
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    n_triples = len(batch["user"])
    step = chunk_triples or n_triples
    loss_value = 0.0
    for index, start in enumerate(range(0, n_triples, step)):
        chunk = {name: ids[start:start + step] for name, ids in batch.items()}
        with autocast(device, precision):
            loss = model.calculate_loss(chunk, regularised=regularised, weights_reg=index == 0)
        chunk_loss = loss.detach().item()
        if not math.isfinite(chunk_loss):
            raise TrainingDivergedError(f"loss is {chunk_loss}")
        loss.backward()
        loss_value += chunk_loss
    for optimizer, scheduler in zip(optimizers, schedulers, strict=True):
        optimizer.step()
        scheduler.step()
    return loss_value


def phase_of_epoch(phases: Sequence[LoopPhase], epoch: int) -> int:
    """Index of the phase that trains ``epoch`` (1-based); the last phase runs to the end."""
    end = 0
    for index, phase in enumerate(phases[:-1]):
        end += phase.epochs
        if epoch <= end:
            return index
    return len(phases) - 1


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def fit(
    model: BPRRecommender,
    train_matrix: sp.csr_matrix,
    valid_users: np.ndarray,
    valid_items: np.ndarray,
    batch_size: int,
    phases: Sequence[LoopPhase],
    training: LoopSettings,
    device: torch.device,
    name: str,
    resume_from: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Train ``model`` with BPR; yield a checkpoint dict after every epoch (see module docstring).

    ``valid_users`` (R,) and ``valid_items`` (R, 1 + N) hold each validation item and its negatives;
    validation runs every ``training.validate_every`` epochs (and at the last); the best checked epoch by
    ``training.selection_metric`` is kept, and training stops after ``patience`` checks without improvement
    once ``min_epochs`` are done, or at the cap of ``epochs``; the checkpoint's ``stopped`` says which.
    Epoch 0 (before any step) is evaluated and logged; with
    ``training.select_start`` it competes too, so a model that starts as MF (the ``mf_identity`` and
    ``residual`` recipes, MF trained longer) is never selected below its start on validation.
    Validation scores in fp32 whatever ``training.precision`` trains in, so the selection never
    depends on the precision.
    """
    model.to(device)
    score = pair_scorer(model, device, "fp32", training.eval_batch_pairs)  # selection never depends on precision
    ks = [int(training.selection_metric.split("@")[1])]

    def validate(epoch: int) -> dict[str, float]:
        return evaluate_sampled(score, valid_users, valid_items, ks, label=f"{name} at epoch {epoch} (validation)")

    run_started = time.perf_counter()
    run = _resumed(model, phases, training, name, resume_from) if resume_from is not None else \
        _started(model, phases, training, name, validate(0))
    validation_seconds = time.perf_counter() - run_started if resume_from is None else None
    if run.state["stopped"]:
        yield run.checkpoint(model)
        return
    epoch_seconds: list[float] = []
    deadline = None if training.time_budget_minutes is None else run_started + training.time_budget_minutes * 60
    for epoch in range(run.state["epoch"] + 1, training.epochs + 1):
        run.enter_phase(model, phases, epoch, name)
        started = time.perf_counter()
        projection = None if epoch_seconds else functools.partial(
            _log_projection, name, training, training.epochs - epoch + 1, validation_seconds)
        train_in = functools.partial(_train_epoch, model, run, phases[run.phase].regularised, train_matrix,
                                     batch_size, training, device, name, epoch, deadline=deadline)
        if run.state["precision"] is None:  # precision: auto where bf16 is native: this epoch decides
            (loss, n_triples, train_seconds, cut_short), trial, trial_rates = _first_epoch_in_both(
                model, run, train_in, projection, functools.partial(validate, epoch), training.selection_metric, name)
        else:
            (loss, n_triples, train_seconds, cut_short), trial, trial_rates = (
                train_in(projection, precision=run.state["precision"]), {}, {})
        checked = cut_short or epoch % training.validate_every == 0 or epoch == training.epochs
        metrics = (trial.get(run.state["precision"]) or validate(epoch)) if checked else {}  # a trial's check counts
        epoch_seconds.append(time.perf_counter() - started)
        _select(model, run.state, epoch, metrics, training)
        if cut_short:
            run.state["stopped"] = (
                f"stopped within epoch {epoch} at the time budget of {training.time_budget_minutes:g} min "
                f"(training.time_budget_minutes): {cut_short}; the best epoch so far ({run.state['best']['epoch']}) "
                "is kept")
        elif not run.state["stopped"]:
            run.state["stopped"] = _over_budget(training, time.perf_counter() - run_started, epoch_seconds,
                                                run.state["best"]["epoch"])
        run.state["history"].append({
            "epoch": epoch, "phase": run.phase, "loss": loss, "seconds": epoch_seconds[-1],
            "triples_per_second": n_triples / train_seconds, "precision": run.state["precision"], **metrics,
            **{f"{precision}_{m}": v for precision in PRECISIONS for m, v in trial.get(precision, {}).items()},
            **{f"{precision}_triples_per_second": rate for precision, rate in trial_rates.items()},
            **({"stopped": run.state["stopped"]} if run.state["stopped"] else {}),
        })
        logger.info(
            "%s epoch %d/%d: loss %.4f, valid %s (best %.4f at epoch %d), %s triples/s, %.1f s, ETA %s",
            name, epoch, training.epochs, loss,
            _metric_text(metrics, training.selection_metric) if checked else "not checked this epoch",
            run.state["best"]["metric"], run.state["best"]["epoch"], f"{n_triples / train_seconds:,.0f}",
            epoch_seconds[-1],
            "done" if run.state["stopped"] else _format_seconds(np.mean(epoch_seconds) * (training.epochs - epoch)),
        )
        yield run.checkpoint(model)
        if run.state["stopped"]:
            logger.info("%s: %s", name, run.state["stopped"])
            return


@dataclasses.dataclass
class _Run:
    """What a checkpoint holds beside the model: the phase, its optimisers, and the selection state."""

    phase: int
    optimisers: Optimisers
    state: dict[str, Any]  # epoch, history, best, bad_checks, stopped

    def enter_phase(self, model: BPRRecommender, phases: Sequence[LoopPhase], epoch: int, name: str) -> None:
        """Fresh optimisers where ``epoch`` starts a new phase."""
        if phase_of_epoch(phases, epoch) != self.phase:
            self.phase = phase_of_epoch(phases, epoch)
            self.optimisers = optimisers_for(model, phases[self.phase].optimiser, phases[self.phase].warmup_steps)
            logger.info("%s: phase %d of %d from epoch %d", name, self.phase + 1, len(phases), epoch)

    def checkpoint(self, model: BPRRecommender) -> dict[str, Any]:
        """A snapshot: later steps must not change what was yielded."""
        return copy.deepcopy({
            "model": model.saved(),
            "phase": self.phase,
            "optimizer_states": [o.state_dict() for o in self.optimisers[0]],
            "scheduler_states": [s.state_dict() for s in self.optimisers[1]],
            **self.state,
        })


def _resumed(model: BPRRecommender, phases: Sequence[LoopPhase], training: LoopSettings, name: str,
             saved: dict[str, Any]) -> _Run:
    """The run as a checkpoint left it: weights, phase, optimiser states, selection state."""
    model.load_saved(saved["model"])
    phase = saved["phase"]
    optimisers = optimisers_for(model, phases[phase].optimiser, phases[phase].warmup_steps)
    _load_states(optimisers, saved["optimizer_states"], saved["scheduler_states"])
    state = {k: saved[k] for k in ("epoch", "history", "best", "bad_checks")}
    state["precision"] = saved.get("precision", None if training.precision == "auto" else training.precision)
    state["stopped"] = _stop_reason(state, training)  # under this run's budget: a raised cap continues
    logger.info("%s: resuming after epoch %d", name, state["epoch"])
    return _Run(phase, optimisers, state)


def _started(model: BPRRecommender, phases: Sequence[LoopPhase], training: LoopSettings, name: str,
             metrics: dict[str, float]) -> _Run:
    """A fresh run: epoch 0's validation ``metrics`` logged, and selectable with ``select_start``."""
    phase = phase_of_epoch(phases, 1)
    metric = training.selection_metric
    precision = None if training.precision == "auto" else training.precision  # None: the first epoch decides
    state = {
        "epoch": 0,
        "history": [{"epoch": 0, "phase": phase, "loss": math.nan, "seconds": 0.0, "triples_per_second": math.nan,
                     **metrics}],
        "best": {"epoch": 0, "valid_metrics": metrics,
                 "metric": metrics[metric] if training.select_start else -math.inf,
                 "model": _selected(model, 0, metrics, training, None) if training.select_start else None},  # untrained
        "bad_checks": 0,
        "stopped": None,
        "precision": precision,
    }
    logger.info("%s epoch 0 (untrained): valid %s", name, _metric_text(metrics, metric))
    return _Run(phase, optimisers_for(model, phases[phase].optimiser, phases[phase].warmup_steps), state)


def _train_epoch(model: BPRRecommender, run: _Run, regularised: bool, train_matrix: sp.csr_matrix, batch_size: int,
                 training: LoopSettings, device: torch.device, name: str, epoch: int,
                 projection: Callable[[float, int], None] | None = None,
                 deadline: float | None = None, precision: str = "fp32") -> tuple[float, int, float, str | None]:
    """One pass over the epoch's seeded triples, with progress (rate, ETA) every ``log_every_seconds``; the mean loss,
    the number of triples trained, the seconds spent, and why the pass was cut short (None when it was not): it
    stops after the step that reaches ``deadline`` (``time.perf_counter()``), so a first epoch longer than the time
    budget does not overrun it (a 20 M log's ConvNCF epoch is hours). ``projection`` gets the step rate (triples/s)
    of the first :data:`RATE_AFTER_BATCHES` batches and the epoch's triples."""
    torch.manual_seed(training.seed * 1_000_003 + epoch)  # dropout masks
    users, positives, negatives = sample_triples(train_matrix, np.random.default_rng([training.seed, epoch]))
    n_triples = len(users)
    model.train()
    started = last_log = time.perf_counter()
    loss_sum = 0.0
    for step, start in enumerate(range(0, n_triples, batch_size)):
        end = start + batch_size
        batch = {"user": torch.from_numpy(users[start:end]).to(device),
                 "item": torch.from_numpy(positives[start:end]).to(device),
                 "neg_item": torch.from_numpy(negatives[start:end]).to(device)}
        try:
            loss_sum += train_step(model, run.optimisers, batch, precision, regularised, training.chunk_triples)
        except TrainingDivergedError as exc:
            raise TrainingDivergedError(
                f"{name}: {exc} at epoch {epoch}, step {step}; the last good checkpoint (epoch "
                f"{run.state['epoch']}) is kept. Lower the learning rate or raise the L2 weights."
            ) from None
        now = time.perf_counter()
        if projection is not None and (step + 1 == RATE_AFTER_BATCHES or end >= n_triples):
            projection(min(end, n_triples) / (now - started), n_triples)
            projection = None
        if deadline is not None and now >= deadline and end < n_triples:
            return loss_sum / end, end, now - started, f"{end:,} of its {n_triples:,} triples trained"
        if now - last_log >= training.log_every_seconds:
            done = min(end, n_triples)
            rate = done / (now - started)
            logger.info("%s epoch %d: %d%% (%s/%s triples), %s triples/s, epoch ETA %s", name, epoch,
                        100 * done // n_triples, f"{done:,}", f"{n_triples:,}", f"{rate:,.0f}",
                        _format_seconds((n_triples - done) / rate))
            last_log = now
    return loss_sum / n_triples, n_triples, time.perf_counter() - started, None


PRECISIONS = ("bf16", "fp32")


def _first_epoch_in_both(model: BPRRecommender, run: _Run, train_in: Callable, projection: Callable | None,
                         check: Callable[[], dict[str, float]], metric: str, name: str) -> tuple[tuple, dict, dict]:
    """``precision: auto``: the epoch trained in bf16 and again, from the same start, in fp32; bf16's run is kept
    where its validation ``metric`` equals fp32's to 3 decimals (the rule export applies to its graphs) and it trained
    faster, else fp32's (also when the time budget cut the bf16 run short: nothing then shows it trains like fp32).
    Speed is part of the rule because bf16 is not always the fast one: on CPU, fp32 runs ConvNCF's first two layers
    fused (models/fused_layers.py). The next epochs train in the kept precision. Returns the kept epoch's result, each
    precision's check and each precision's triples/s."""
    start = _snapshot(model, run)
    results, checks = {"bf16": train_in(projection, precision="bf16")}, {}
    if results["bf16"][3] is None:  # a whole epoch: comparable
        checks["bf16"], bf16_end = check(), _snapshot(model, run)
    _restore(model, run, start)
    results["fp32"], checks["fp32"] = train_in(None, precision="fp32"), check()
    rates = {precision: n_triples / seconds for precision, (_, n_triples, seconds, _) in results.items()}
    same = "bf16" in checks and round(checks["bf16"][metric], 3) == round(checks["fp32"][metric], 3)
    faster = rates["bf16"] > rates["fp32"]
    kept = "bf16" if same and faster else "fp32"
    if kept == "bf16":
        _restore(model, run, bf16_end)
    run.state["precision"] = kept
    logger.info("%s: precision auto: the first epoch validates at %s %s in bf16 and %.4f in fp32 (%s) at %s and %s "
                "triples/s (bf16 %s): it trains in %s from here", name, metric,
                f"{checks['bf16'][metric]:.4f}" if "bf16" in checks else "— (cut short by the time budget)",
                checks["fp32"][metric], "equal to 3 decimals" if same else "not equal to 3 decimals",
                f"{rates['bf16']:,.0f}", f"{rates['fp32']:,.0f}", "faster" if faster else "not faster", kept)
    return results[kept], checks, rates


def _snapshot(model: BPRRecommender, run: _Run) -> tuple:
    """The weights and optimiser states, copied (what an epoch changes)."""
    return copy.deepcopy((model.state_dict(), [o.state_dict() for o in run.optimisers[0]],
                          [s.state_dict() for s in run.optimisers[1]]))


def _restore(model: BPRRecommender, run: _Run, snapshot: tuple) -> None:
    weights, optimizer_states, scheduler_states = copy.deepcopy(snapshot)
    model.load_state_dict(weights)
    _load_states(run.optimisers, optimizer_states, scheduler_states)


def _load_states(optimisers: Optimisers, optimizer_states: list[dict], scheduler_states: list[dict]) -> None:
    """Optimisers and their schedulers as a checkpoint or a snapshot left them."""
    for part, states in zip(optimisers, (optimizer_states, scheduler_states), strict=True):
        for item, state in zip(part, states, strict=True):
            item.load_state_dict(state)


def _log_projection(name: str, training: LoopSettings, epochs_left: int, validation_seconds: float | None,
                    triples_per_second: float, n_triples: int) -> None:
    """What the rest of the stage will cost at the rate just measured, before it is spent: at most ``epochs_left``
    epochs and their validation checks (timed at epoch 0), against the time budget when there is one."""
    epoch = n_triples / triples_per_second
    checks = sum(1 for e in range(training.epochs - epochs_left + 1, training.epochs + 1)
                 if e % training.validate_every == 0 or e == training.epochs)
    total = epochs_left * epoch + checks * (validation_seconds or 0.0)
    budget = ("" if training.time_budget_minutes is None else
              f"; the time budget of {training.time_budget_minutes:g} min stops it sooner"
              if total > training.time_budget_minutes * 60 else
              f"; within the time budget of {training.time_budget_minutes:g} min")
    logger.info("%s: %s triples/s over the first batches: an epoch takes about %s; at most %d more epochs and %d "
                "validation checks%s: about %s in all (early stopping usually ends sooner)%s", name,
                f"{triples_per_second:,.0f}", _format_seconds(epoch), epochs_left, checks,
                f" ({_format_seconds(validation_seconds)} each)" if validation_seconds else "",
                _format_seconds(total), budget)


def _over_budget(training: LoopSettings, elapsed: float, epoch_seconds: list[float], best_epoch: int) -> str | None:
    """Why the next epoch does not start: it would end past the time budget (at this run's mean epoch time)."""
    if training.time_budget_minutes is None or elapsed + np.mean(epoch_seconds) <= training.time_budget_minutes * 60:
        return None
    return (f"stopped at the time budget of {training.time_budget_minutes:g} min (training.time_budget_minutes): "
            f"{_format_seconds(elapsed)} spent, another epoch takes about {_format_seconds(np.mean(epoch_seconds))}; "
            f"the best epoch so far ({best_epoch}) is kept")


def _select(model: BPRRecommender, state: dict[str, Any], epoch: int, metrics: dict[str, float],
            training: LoopSettings) -> None:
    """After ``epoch``: keep it as the best where its check improved, count a check that did not, decide stopping."""
    state["epoch"] = epoch
    if metrics and metrics[training.selection_metric] > state["best"]["metric"]:
        state["best"] = {"epoch": epoch, "metric": metrics[training.selection_metric], "valid_metrics": metrics,
                         "model": _selected(model, epoch, metrics, training, state["precision"])}
        state["bad_checks"] = 0
    elif metrics:
        state["bad_checks"] += 1
    state["stopped"] = _stop_reason(state, training)


def resume_refusal(checkpoint: dict[str, Any], training: LoopSettings) -> str | None:
    """Why continuing ``checkpoint`` under ``training`` would not end where a fresh run would, or None.

    A checkpoint past this run's cap holds epochs a fresh run never trains, and one checked at an epoch this run's
    schedule would not check (the last epoch of a lower cap) chose its best among other checks."""
    if checkpoint["epoch"] > training.epochs:
        return (f"it has trained {checkpoint['epoch']} epochs, more than this run's training.epochs="
                f"{training.epochs}")
    metric = training.selection_metric
    for row in checkpoint["history"][1:]:
        scheduled = row["epoch"] % training.validate_every == 0 or row["epoch"] == training.epochs
        if metric in row and not scheduled:
            return (f"it validated epoch {row['epoch']} as the last of its cap, which this run's schedule "
                    f"(training.epochs={training.epochs}, validate_every={training.validate_every}) does not")
    return None


def _stop_reason(state: dict[str, Any], training: LoopSettings) -> str | None:
    """Why training ends after the state's epoch, or None while it goes on (one rule for runs and resumes)."""
    if state["bad_checks"] >= training.patience and state["epoch"] >= training.min_epochs:
        return (f"stopped early at epoch {state['epoch']}: no better validation {training.selection_metric} in "
                f"{training.patience} checks (every {training.validate_every} epochs) since epoch {state['best']['epoch']}")
    if state["epoch"] >= training.epochs:
        return f"reached the cap of {training.epochs} epochs"
    return None


def _selected(model: BPRRecommender, epoch: int, metrics: dict[str, float], training: LoopSettings,
              trained_in: str | None) -> dict:
    """The saved form of the model as a candidate best epoch, with what chose it."""
    return model.saved(epoch=epoch, valid_metrics=metrics, selection_metric=training.selection_metric,
                       trained_in=trained_in, validated_in="fp32")


def _metric_text(metrics: dict[str, float], metric: str) -> str:
    """The selection metric and its HR twin, e.g. 'ndcg@10 0.5123, hr@10 0.8321'."""
    names = dict.fromkeys([metric, metric.replace("ndcg", "hr").replace("mrr", "hr")])
    return ", ".join(f"{name} {metrics[name]:.4f}" for name in names if name in metrics)
