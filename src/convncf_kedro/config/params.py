"""Typed parameter groups, one per ``conf/base/parameters_<group>.yml``.

Each group is checked once, at the start of a run (see ``hooks.py``), so a bad value fails before any
work with a message naming the parameter; nodes parse their group with :func:`parse_params`.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from convncf_kedro.errors import ParameterError


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DelimitedFormat(_Group):
    sep: str = "\t"
    header: bool = False
    names: list[str] | None = None
    user_column: str
    item_column: str
    rating_column: str | None = None
    timestamp_column: str | None = None


class RecboleFormat(_Group):
    user_field: str = "user_id"
    item_field: str = "item_id"
    rating_field: str | None = "rating"
    timestamp_field: str | None = "timestamp"


class IngestionParams(_Group):
    format: Literal["delimited", "recbole", "ncf", "lightgcn"]
    delimited: DelimitedFormat
    recbole: RecboleFormat = RecboleFormat()
    rating_threshold: float | None = None
    k_core: int = Field(0, ge=0)
    min_interactions: int = Field(3, ge=3)
    untimed_holdout: Literal["last", "random"] = "random"
    validation_users: int | None = Field(None, ge=1)
    sample_users: int | None = Field(None, ge=1)
    n_negatives: int = Field(99, ge=1)
    given_negatives: Literal["strict", "resample", "drop"] = "resample"
    on_raw_change: Literal["refuse", "warn"] = "refuse"
    seed: int = 2018


class PhaseParams(_Group):
    """A stretch of training with fresh optimisers (the authors' first epoch, a frozen-embedding start)."""

    epochs: int | None = Field(None, ge=1)  # None: the rest of training (the last phase)
    optimizer: Literal["adagrad", "adam"] = "adagrad"
    adagrad_initial_accumulator: float = Field(0.0, ge=0)
    lr_embedding: float = Field(ge=0)  # 0 freezes the embeddings
    lr_tower: float = Field(0.0, ge=0)  # 0 freezes the tower (MF has none)
    warmup_steps: int = Field(0, ge=0)
    regularised: bool = True  # False: BPR alone, no L2 (the authors' first epoch)


def _check_phases(phases: list[PhaseParams]) -> list[PhaseParams]:
    if any(phase.epochs is None for phase in phases[:-1]):
        raise ValueError("every phase but the last needs `epochs`")
    if phases[-1].epochs is not None:
        raise ValueError("the last phase runs until training ends: leave its `epochs` out")
    return phases


class TrainingParams(_Group):
    """The budget and how a run executes; what is optimised how is in ``phases``."""

    epochs: int = Field(ge=1)  # the cap
    patience: int = Field(ge=1)  # validation checks without improvement before stopping
    validate_every: int = Field(1, ge=1)  # epochs between validation checks (the last epoch is always checked)
    min_epochs: int = Field(0, ge=0)  # never stop early before this epoch
    select_start: bool  # the untrained start (epoch 0) may be the selected epoch
    selection_metric: str = Field("ndcg@10", pattern=r"^(hr|ndcg|mrr)@[1-9][0-9]*$")
    eval_batch_pairs: int = Field(65536, ge=1)
    chunk_triples: int | None = Field(None, ge=1)  # triples per forward/backward within a batch; None: the whole batch
    precision: Literal["auto", "fp32", "bf16"] = "fp32"  # auto: bf16 where native and it validates like fp32
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")
    threads: int | None = Field(None, ge=1)
    seed: int = 2018
    resume: bool = True
    log_every_seconds: float = Field(30.0, gt=0)
    time_budget_minutes: float | None = Field(None, gt=0)  # stop before an epoch that would end past it; None: no limit


class PretrainParams(_Group):
    embedding_size: int = Field(ge=1)
    reg_embedding: float = Field(ge=0)
    init_std: float = Field(0.01, gt=0)
    batch_size: int = Field(ge=1)
    phases: list[PhaseParams] = Field(min_length=1)
    training: TrainingParams

    _phases = field_validator("phases")(_check_phases)


class RecipeParams(_Group):
    """One way to train ConvNCF: its tower's start, its L2 weights and its phases."""

    tower_init: Literal["truncated_normal", "mf_identity"]
    residual: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)
    reg_embedding: float = Field(ge=0)
    reg_conv: float = Field(ge=0)
    reg_out: float = Field(ge=0)
    batch_size: int = Field(ge=1)
    phases: list[PhaseParams] = Field(min_length=1)

    _phases = field_validator("phases")(_check_phases)

    @model_validator(mode="after")
    def _identity_is_not_residual(self) -> RecipeParams:
        if self.residual and self.tower_init == "mf_identity":
            raise ValueError("tower_init 'mf_identity' with residual: true would count MF's score twice")
        return self


class ConvNCFParams(_Group):
    channels: int = Field(ge=1)
    kernel_sizes: list[int] | None = None
    recipes: dict[str, RecipeParams] = Field(min_length=1)
    recipe: str
    training: TrainingParams

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, recipe: str, info: ValidationInfo) -> str:
        known = sorted(info.data.get("recipes") or {})
        if known and recipe not in known:
            raise ValueError(f"'{recipe}' is not one of the recipes: {', '.join(known)}")
        return recipe

    @property
    def chosen(self) -> RecipeParams:
        return self.recipes[self.recipe]


_CLUSTER = r"^(local:[1-9][0-9]*|local-cuda|(tcp|tls|ucx|inproc)://.+)$"  # a Dask cluster (serving/engine.py)


class RetrieveCandidates(_Group):
    """Two stages: the model re-ranks only each user's ``retrieve`` best unseen items by its embeddings' dot product;
    ``auto``: the smallest shortlist export found to rank validation like every item does."""

    retrieve: int | Literal["auto"]

    @field_validator("retrieve")
    @classmethod
    def _positive(cls, retrieve: int | str) -> int | str:
        if isinstance(retrieve, int) and retrieve < 1:
            raise ValueError(f"a shortlist of {retrieve} items: give at least 1, or auto")
        return retrieve


class RankingParams(_Group):
    """How full rankings are computed wherever they run (evaluation's and score's): one definition of the fields both
    groups share, and of the engine settings built from them."""

    batch_pairs: int = Field(256, ge=1)  # pairs per forward pass / session.run
    chunk_users: int = Field(16, ge=1)  # users × items scored per block: bounds memory
    chunk_items: int = Field(2048, ge=1)
    threads: int | None = Field(None, ge=1)  # torch / ONNX Runtime intra-op threads; None: their default
    log_every_seconds: float = Field(30.0, gt=0)
    cluster: str | None = Field(None, pattern=_CLUSTER)  # where ONNX Runtime's partitions run; None: this process
    partition_users: int = Field(256, ge=1)  # users per partition (one task)

    candidates: RetrieveCandidates | Literal["all"] = "all"  # every unseen item, or {retrieve: N | auto}

    def shortlist(self, retrieval_check: dict | None, group: str) -> int | None:
        """The shortlist size ``candidates`` asks for (None: every unseen item); ``auto`` reads export's check."""
        if self.candidates == "all":
            return None
        if self.candidates.retrieve != "auto":
            return self.candidates.retrieve
        chosen = (retrieval_check or {}).get("chosen")
        if chosen is None:
            raise ParameterError(f"{group}.candidates.retrieve", "is 'auto', but export found no shortlist that ranks "
                                 "validation like every item does (retrieval_validation.json); give a size, or all")
        return int(chosen)

    def engine_fields(self) -> dict:
        """The fields the scoring engine's settings take from this group (serving.engine.RankSettings; built where
        the engine runs, so the configuration imports no serving code)."""
        return {"batch_pairs": self.batch_pairs, "chunk_users": self.chunk_users, "chunk_items": self.chunk_items,
                "threads": self.threads, "log_every_seconds": self.log_every_seconds}


class EvaluationParams(RankingParams):
    ks: list[int] = Field(min_length=1)
    protocols: list[Literal["sampled", "full"]] = Field(min_length=1)
    max_users: int | None = Field(None, ge=1)
    seed: int = 2018
    confidence: float = Field(0.95, gt=0, lt=1)
    bootstrap_resamples: int = Field(2000, ge=100)
    chunk_users: int = Field(ge=1)
    chunk_items: int = Field(ge=1)
    batch_pairs: int = Field(ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, ks: list[int]) -> list[int]:
        if min(ks) < 1:
            raise ValueError("every K must be at least 1")
        return sorted(set(ks))


class RetrievalCheck(_Group):
    """Which shortlist sizes export tries on validation, on how many users, and what counts as ranking alike."""

    users: int = Field(ge=1)  # a seeded sample of validation users (all of them when fewer)
    shortlists: list[int] = Field(min_length=1)  # sizes tried, smallest first
    min_recall: float = Field(gt=0, le=1)  # share of the exhaustive top-10 the shortlist must hold
    seed: int = 2018


class ExportParams(_Group):
    retrieval_check: RetrievalCheck
    opset: int = Field(18, ge=17)
    tolerance: float = Field(1e-4, gt=0)
    validation_pairs: int = Field(4096, ge=1)
    calibration_pairs: int = Field(25600, ge=1)
    batch_pairs: int = Field(256, ge=1)
    dataset_name: str


class ScoreParams(RankingParams):
    k: int = Field(ge=1)
    precision: Literal["auto", "fp32", "int8"] = "auto"
    users: Literal["all", "list"] = "all"
    unknown_users: Literal["skip", "popular"] = "skip"
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ControlParams(_Group):
    """How the "MF trained longer" control continues MF: its batch and phases (embeddings only)."""

    batch_size: int = Field(ge=1)
    phases: list[PhaseParams] = Field(min_length=1)

    _phases = field_validator("phases")(_check_phases)


class StudyParams(_Group):
    """The study's budget beyond MF's best epoch and what it reports (its members: conf/<env>/study.yml)."""

    extra_epochs: int = Field(ge=1)  # every variant trains at most this many epochs from MF's best (ConvNCF and control)
    validate_every: int = Field(1, ge=1)  # every variant's early-stopping schedule: a check every N epochs, ...
    patience: int = Field(20, ge=1)  # ... stopping after this many checks without improvement ...
    min_epochs: int = Field(0, ge=0)  # ... but never before this epoch
    mf_longer: ControlParams
    protocols: list[Literal["sampled", "full"]] = Field(min_length=1)
    metrics: list[str] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _members_are_not_parameters(cls, values: dict) -> dict:
        moved = [key for key in ("seeds", "recipes") if key in (values or {})]
        if moved:
            raise ValueError(f"{moved} shape the study's pipeline, so they live in conf/base/study.yml (override: "
                             "conf/local/study.yml, or KEDRO_ENV=<env> with conf/<env>/study.yml), not in parameters")
        return values

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        for metric in metrics:
            if not re.fullmatch(r"(hr|ndcg|mrr|recall|precision)@[1-9][0-9]*", metric):
                raise ValueError(f"'{metric}' is not a metric@K (hr, ndcg, mrr, recall, precision)")
        return metrics


class SearchRange(_Group):
    """One hyperparameter's search: ``low``–``high`` (``log`` scale; integers when both are), ``choices``, or a fixed
    ``value``."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[str | int | float] | None = None
    value: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _one_form(self) -> SearchRange:
        forms = [self.low is not None or self.high is not None, self.choices is not None, self.value is not None]
        if sum(forms) != 1 or (forms[0] and (self.low is None or self.high is None)):
            raise ValueError("give low and high, or choices, or value")
        if forms[0] and (self.high < self.low or (self.log and self.low <= 0)):
            raise ValueError(f"low {self.low} must be ≤ high {self.high} (and > 0 on a log scale)")
        return self


class BaselinesParams(_Group):
    """Which simple baselines `train` and `study` fit beside MF and ConvNCF, and how each is tuned on validation."""

    models: list[str]  # in report order; cut or extend (names: baselines/registry.py, checked there)
    trials: int = Field(ge=1)  # Optuna trials per tunable model, the same for every one
    seed: int = 2018
    selection_metric: str = Field("ndcg@10", pattern=r"^(hr|ndcg|mrr)@[1-9][0-9]*$")
    memory_budget_gib: float = Field(gt=0)  # a model that would need more (EASE^R: 4·n_items² bytes) is left out
    cooccurrence_budget: float = Field(gt=0)  # a neighbourhood model whose similarity needs more products is left out
    threads: int = Field(1, ge=1)
    time_budget_minutes: float | None = Field(None, gt=0)  # shared equally by the tunable models; None: no limit
    search: dict[str, dict[str, SearchRange]]


_Params = TypeVar("_Params", bound=BaseModel)

PARAMETER_GROUPS: dict[str, type[BaseModel]] = {
    "ingestion": IngestionParams,
    "pretrain": PretrainParams,
    "convncf": ConvNCFParams,
    "evaluation": EvaluationParams,
    "export": ExportParams,
    "score": ScoreParams,
    "study": StudyParams,
    "baselines": BaselinesParams,
}


def _field_names(model: type[BaseModel], seen: set[str]) -> set[str]:
    """Every parameter name a group (and the groups nested in it) knows, for "did you mean" hints."""
    for name, field in model.model_fields.items():
        seen.add(name)
        for inner in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for candidate in (inner, *getattr(inner, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    _field_names(candidate, seen)
    return seen


def _did_you_mean(name: str, known: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


_UNION_TAG = re.compile(r"[A-Z]\w*|int|float|str|bool|\w+\[.*\]")  # where pydantic names a union's branch


def parse_params(model: type[_Params], values: dict, group: str) -> _Params:
    """Validate one parameter group; the error names the first bad parameter by its dotted path."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        keys = [str(part) for part in first["loc"] if not _UNION_TAG.fullmatch(str(part))]  # the conf's own path
        name = ".".join([group, *keys])
        if first["type"] == "extra_forbidden":
            hint = _did_you_mean(str(first["loc"][-1]), _field_names(model, set()))
            raise ParameterError(name, f"is not a parameter of this group{hint}") from exc
        raise ParameterError(name, f"{first['msg']} (got {first.get('input')!r})") from exc


def validate_parameters(parameters: dict, study_recipes: list[str] | None = None) -> dict[str, BaseModel]:
    """Check every known group, and what groups must agree on (and the study's recipes, when a study runs), before a
    run does any work; the parsed groups."""
    for group in parameters:
        if group not in PARAMETER_GROUPS:
            raise ParameterError(
                group, f"is not a parameter group{_did_you_mean(group, list(PARAMETER_GROUPS))}; the groups are "
                f"{', '.join(PARAMETER_GROUPS)} (conf/base/parameters_<group>.yml)")
    parsed = {
        group: parse_params(model, parameters[group], group)
        for group, model in PARAMETER_GROUPS.items()
        if group in parameters
    }
    ingestion, evaluation = parsed.get("ingestion"), parsed.get("evaluation")
    if ingestion is not None and evaluation is not None and "sampled" in evaluation.protocols:
        if max(evaluation.ks) > ingestion.n_negatives + 1:
            raise ParameterError(
                "evaluation.ks",
                f"K={max(evaluation.ks)} is larger than the {ingestion.n_negatives + 1} candidates of the sampled "
                "protocol (ingestion.n_negatives + 1)",
            )
    study, convncf = parsed.get("study"), parsed.get("convncf")
    if study_recipes is not None and convncf is not None:
        unknown = [name for name in study_recipes if name not in convncf.recipes]
        if unknown:
            raise ParameterError(
                "study.recipes", f"{unknown} (study.yml) are not recipes of convncf.recipes "
                f"({', '.join(sorted(convncf.recipes))})")
    if study is not None and evaluation is not None:
        cut_offs = {int(metric.split("@")[1]) for metric in study.metrics}
        if not cut_offs <= set(evaluation.ks):
            raise ParameterError("study.metrics", f"K {sorted(cut_offs)} must be among evaluation.ks {evaluation.ks}")
    pretrain = parsed.get("pretrain")
    if pretrain is not None and convncf is not None:
        d = pretrain.embedding_size
        if convncf.kernel_sizes is None and d & (d - 1):
            raise ParameterError(
                "pretrain.embedding_size",
                f"{d} is not a power of two, which the default tower of 2×2 layers needs; "
                "use 64, 32, … or set convncf.kernel_sizes",
            )
        if convncf.kernel_sizes is not None and math.prod(convncf.kernel_sizes) != d:
            raise ParameterError(
                "convncf.kernel_sizes",
                f"{convncf.kernel_sizes} multiply to {math.prod(convncf.kernel_sizes)}, but the map is "
                f"{d}×{d} (pretrain.embedding_size): the tower must end at 1×1",
            )
    return parsed
