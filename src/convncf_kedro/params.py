"""Typed parameter groups, one per ``conf/base/parameters_<group>.yml``.

Each group is checked once, at the start of a run (see ``hooks.py``), so a bad value fails before any
work with a message naming the parameter; nodes parse their group with :func:`parse_params`.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    n_negatives: int = Field(99, ge=1)
    seed: int = 2018


class TrainingParams(_Group):
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    optimizer: Literal["adagrad", "adam"]
    lr_embedding: float = Field(gt=0)
    lr_tower: float | None = Field(None, gt=0)
    warmup_steps: int = Field(0, ge=0)
    patience: int = Field(ge=1)
    selection_metric: str = Field("ndcg@10", pattern=r"^(hr|ndcg|mrr)@[1-9][0-9]*$")
    eval_batch_pairs: int = Field(65536, ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")
    threads: int | None = Field(None, ge=1)
    seed: int = 2018
    resume: bool = True
    log_every_seconds: float = Field(30.0, gt=0)


class PretrainParams(_Group):
    embedding_size: int = Field(ge=1)
    reg_embedding: float = Field(ge=0)
    training: TrainingParams


class ConvNCFParams(_Group):
    channels: int = Field(ge=1)
    kernel_sizes: list[int] | None = None
    dropout: float = Field(0.0, ge=0, lt=1)
    reg_embedding: float = Field(ge=0)
    reg_conv: float = Field(ge=0)
    reg_out: float = Field(ge=0)
    tower_init: Literal["mf_identity", "random"]
    training: TrainingParams


_Params = TypeVar("_Params", bound=BaseModel)

PARAMETER_GROUPS: dict[str, type[BaseModel]] = {
    "ingestion": IngestionParams,
    "pretrain": PretrainParams,
    "convncf": ConvNCFParams,
}


def parse_params(model: type[_Params], values: dict, group: str) -> _Params:
    """Validate one parameter group; the error names the first bad parameter by its dotted path."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join([group, *map(str, first["loc"])])
        raise ParameterError(name, f"{first['msg']} (got {first.get('input')!r})") from exc
