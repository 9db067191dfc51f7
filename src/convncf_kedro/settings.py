"""Project settings (Kedro defaults, plus the hook that checks parameters before a run)."""

from convncf_kedro.hooks import ReportOutputsHook, ValidateParametersHook

HOOKS = (ValidateParametersHook(), ReportOutputsHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge parameters across environments: conf/local may override single values, and
    # `--params a.b=1` keeps a group's other values even when conf/local has a parameters file
    # (with the default destructive merge, Kedro 1.7 then drops them).
    "merge_strategy": {"parameters": "soft"},
}
