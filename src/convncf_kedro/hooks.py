"""Project hooks: fail a run at its start when a parameter cannot work."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from convncf_kedro.params import validate_parameters


class ValidateParametersHook:
    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        validate_parameters(catalog.load("parameters"))
