"""Every baseline in one place: how it is fitted and what its hyperparameters may be. The parameter check
(:func:`check_settings`, run before any work), the tuner and the report read this registry; adding a baseline is one
entry here and its search space in ``parameters_baselines.yml``."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

import scipy.sparse as sp

from convncf_kedro.config.params import BaselinesParams
from convncf_kedro.errors import ParameterError

from . import models
from .models import LinearScorer

WEIGHTINGS = ("none", "tfidf", "bm25")  # the KNN models' weightings


@dataclasses.dataclass(frozen=True)
class Fitting:
    """What a fit may need beside its hyperparameters."""

    seed: int
    threads: int
    memory_budget_bytes: int


@dataclasses.dataclass(frozen=True)
class Baseline:
    fit: Callable[[sp.csr_matrix, dict[str, Any], Fitting], LinearScorer]
    domain: dict[str, tuple[float, str]]  # hyperparameter → (lowest value, int | float | choice): the model's domain


_KNN = {"top_k": (1, "int"), "shrink": (0, "float"), "weighting": (0, "choice")}

REGISTRY: dict[str, Baseline] = {
    "toppop": Baseline(lambda x, point, fitting: models.toppop(x), {}),
    "itemknn": Baseline(lambda x, point, fitting: models.itemknn(x, **point), _KNN),
    "userknn": Baseline(lambda x, point, fitting: models.userknn(x, **point), _KNN),
    "rp3beta": Baseline(lambda x, point, fitting: models.rp3beta(x, **point),
                        {"alpha": (0, "float"), "beta": (0, "float"), "top_k": (1, "int")}),
    "ease": Baseline(lambda x, point, fitting: models.ease(x, **point, memory_budget_bytes=fitting.memory_budget_bytes),
                     {"l2": (1e-12, "float")}),
    "ials": Baseline(lambda x, point, fitting: models.ials(x, **point, seed=fitting.seed, threads=fitting.threads),
                     {"factors": (1, "int"), "regularization": (0, "float"), "alpha": (0, "float"),
                      "iterations": (1, "int")}),
}


def check_settings(p: BaselinesParams) -> None:
    """Every configured baseline exists and its search space covers exactly its hyperparameters, within their
    domain; the error names the parameter."""
    for name in p.models:
        if name not in REGISTRY:
            close = difflib.get_close_matches(name, list(REGISTRY), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ParameterError("baselines.models", f"'{name}' is not a baseline{hint}; the baselines are "
                                 f"{', '.join(REGISTRY)}")
        space, domain = p.search.get(name, {}), REGISTRY[name].domain
        if set(space) != set(domain):
            raise ParameterError(f"baselines.search.{name}",
                                 f"must set exactly {sorted(domain) or 'nothing'}, not {sorted(space)}")
        for parameter, spec in space.items():
            lowest, kind = domain[parameter]
            values = spec.choices or ([spec.value] if spec.value is not None else [spec.low, spec.high])
            if kind == "choice" and (bad := [v for v in values if v not in WEIGHTINGS]):
                raise ParameterError(f"baselines.search.{name}.{parameter}", f"{bad} not among {list(WEIGHTINGS)}")
            if kind != "choice" and any(not isinstance(v, int | float) or v < lowest for v in values):
                raise ParameterError(f"baselines.search.{name}.{parameter}", f"{values} must be numbers ≥ {lowest:g}")


def over_budget(p: BaselinesParams, x: sp.csr_matrix) -> dict[str, str]:
    """The configured models that would need more than ``memory_budget_gib`` (EASE^R) or more than
    ``cooccurrence_budget`` products to build their similarity (the neighbourhood models), with why — both known from
    the training matrix before any fitting: they are left out (named in the log and the report) and the rest of the
    run goes on."""
    n_items, out = x.shape[1], {}
    if "ease" in p.models and models.ease_bytes(n_items) > int(p.memory_budget_gib * 2**30):
        out["ease"] = (f"EASE^R on {n_items:,} items needs {models.ease_bytes(n_items) / 2**30:.3g} GiB, over "
                       f"baselines.memory_budget_gib={p.memory_budget_gib:g}: left out (raise the budget to fit it)")
    for name, products in models.similarity_products(x).items():
        if name in p.models and products > p.cooccurrence_budget:
            out[name] = (f"{name} needs {products:.2g} co-occurrence products to build its similarity, over "
                         f"baselines.cooccurrence_budget={p.cooccurrence_budget:g}: left out (raise the budget to "
                         "fit it)")
    return out
