"""The study's members — which seeds, which ConvNCF recipes — read from ``conf/<env>/study.yml``.

They decide the study pipeline's nodes (one namespace per seed, one training node per recipe), so they must be known
when Kedro registers pipelines, which it does before it reads a run's ``--params``, ``--env`` or ``--conf-source``
(and which `kedro registry describe` does without any of them). Kedro's maintainers advise against reading the
parameters there; the idiom they point to keeps the variant list in its own config file. Every command reads it the
same way: the project's ``conf`` under the environment named by ``KEDRO_ENV`` (``local`` when unset), and a study run
whose own conf names other members stops and says so (:func:`check_registered`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field, field_validator

from convncf_kedro.config.params import _Group, parse_params
from convncf_kedro.errors import ParameterError

logger = logging.getLogger(__name__)

CONFIG = "study"  # conf/<env>/study.yml
CONFIG_PATTERNS = ["study*", "study*/**"]  # settings.py registers them with the config loader


SEED_NAMESPACE = "study.seed_"  # each seed's members live in the namespace study.seed_<seed>


class Member(NamedTuple):
    """One trained model of the study: a seed and a variant (MF, its control, or a ConvNCF recipe)."""

    seed: int
    variant: str

    def dataset(self, kind: str) -> str:
        """The catalog name of one of its outputs (``test_metrics``, ``per_user_metrics``, ``history``)."""
        return f"{SEED_NAMESPACE}{self.seed}.{self.variant}_{kind}" if kind == "history" else \
            f"{SEED_NAMESPACE}{self.seed}.{kind}_{self.variant}"


class StudyMembers(_Group):
    seeds: list[int] = Field(min_length=1)  # one MF and one of each variant per seed
    recipes: list[str] = Field(min_length=1)  # ConvNCF recipes compared, by name in convncf.recipes

    @field_validator("seeds", "recipes")
    @classmethod
    def _distinct(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError(f"{values} repeats an entry")
        return values

    def same_as(self, other: StudyMembers) -> bool:
        return set(self.seeds) == set(other.seeds) and set(self.recipes) == set(other.recipes)

    def describe(self) -> str:
        return f"seeds {self.seeds}, recipes {self.recipes}"


def from_config(config: dict[str, Any], where: str) -> StudyMembers:
    """Parse study.yml's content; an error names the file and the key."""
    try:
        return parse_params(StudyMembers, config, "study")
    except ParameterError as exc:
        raise ParameterError(f"{exc.name} ({where})", str(exc).split("': ", 1)[1]) from exc


def _read(loader: Any) -> dict | None:
    """study.yml's content as a Kedro config loader merges it; None where there is none."""
    from kedro.config import MissingConfigException

    loader.config_patterns.setdefault(CONFIG, CONFIG_PATTERNS)  # also where settings.py is not loaded yet
    try:
        return loader[CONFIG] or None
    except (MissingConfigException, KeyError):
        return None


def registered(project_path: Path | None = None) -> StudyMembers | None:
    """The members as pipeline registration reads them: ``conf/base/study.yml`` merged with the ``KEDRO_ENV``
    environment's (``local`` by default) of the project above the working folder. None without a usable study.yml
    (a malformed one is logged here and named by the study run itself: it must not stop `train`)."""
    from kedro.framework.project import settings
    from kedro.utils import find_kedro_project

    root = project_path or find_kedro_project(Path.cwd()) or Path.cwd()
    env = os.environ.get("KEDRO_ENV")
    config = _read(settings.CONFIG_LOADER_CLASS(conf_source=str(root / settings.CONF_SOURCE), env=env,
                                                **settings.CONFIG_LOADER_ARGS))
    try:
        return from_config(config, f"{settings.CONF_SOURCE}/*/study.yml, KEDRO_ENV={env or 'local'}") if config else None
    except ParameterError as exc:
        logger.warning("%s; the study pipeline has no members until it is fixed", exc)
        return None


def check_registered(config_loader: Any, env: str | None, project_path: Path) -> StudyMembers:
    """A study run's own conf (its ``--env`` and ``--conf-source``) must name the members the pipeline was
    registered with (:func:`registered`); otherwise the run would train one set and report another."""
    config = _read(config_loader)
    if not config:
        raise ParameterError("study", "the study's members are missing: add conf/base/study.yml with `seeds` and "
                                      "`recipes`")
    members = from_config(config, f"study.yml of env '{env or 'local'}'")
    built = registered(project_path)
    if built is None or not members.same_as(built):
        raise ParameterError(
            "study", f"this run's study.yml names {members.describe()}, but the study pipeline was registered with "
            f"{built.describe() if built else 'no members'}: Kedro registers pipelines before it reads --env or "
            "--conf-source, from the project's conf under KEDRO_ENV; run with KEDRO_ENV=<env> instead of --env, or "
            "put the members in the conf that registration reads")
    return members
