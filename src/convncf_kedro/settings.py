"""Project settings (Kedro defaults, plus hooks: one run per project folder, the study's shape, parameter
checks, where outputs went).

kedro-mlflow registers its own hook (an installed plugin); its settings are in conf/base/mlflow.yml.
"""

from omegaconf.resolvers import oc

from convncf_kedro.hooks import (
    ProjectLockHook,
    ReportOutputsHook,
    StudyShapeHook,
    ValidateParametersHook,
)

_project_lock = ProjectLockHook()
HOOKS = (_project_lock, StudyShapeHook(), ValidateParametersHook(_project_lock), ReportOutputsHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge parameters across environments: conf/local may override single values, and
    # `--params a.b=1` keeps a group's other values even when conf/local has a parameters file
    # (with the default destructive merge, Kedro 1.7 then drops them).
    "merge_strategy": {"parameters": "soft"},
    # ${oc.env:NAME,default} everywhere (Kedro allows it only in credentials): mlflow.yml reads MLFLOW_TRACKING_URI
    "custom_resolvers": {"oc.env": oc.env},
}
