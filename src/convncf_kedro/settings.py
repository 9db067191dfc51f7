"""Project settings (Kedro defaults, plus hooks: one run per project folder, parameter
checks, where outputs went).

kedro-mlflow registers its own hook (an installed plugin); its settings are in conf/base/mlflow.yml.
"""

from omegaconf.resolvers import oc

from convncf_kedro.config import study_members
from convncf_kedro.hooks import (
    ProjectLockHook,
    ReportOutputsHook,
    ValidateParametersHook,
)

_project_lock = ProjectLockHook()
HOOKS = (_project_lock, ValidateParametersHook(_project_lock), ReportOutputsHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge parameters across environments: conf/local may override single values, and
    # `--params a.b=1` keeps a group's other values even when conf/local has a parameters file
    # (with the default destructive merge, Kedro 1.7 then drops them).
    "merge_strategy": {"parameters": "soft"},
    # ${oc.env:NAME,default} everywhere (Kedro allows it only in credentials): mlflow.yml reads MLFLOW_TRACKING_URI
    "custom_resolvers": {"oc.env": oc.env},
    # the study's members (seeds, recipes): they shape its pipeline, so they are not parameters (study_members.py)
    "config_patterns": {study_members.CONFIG: study_members.CONFIG_PATTERNS},
}
