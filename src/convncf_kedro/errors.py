"""Errors that tell the user which file, line, column or parameter is wrong."""

from __future__ import annotations


class InputDataError(ValueError):
    """A raw input file is unusable; the message names the file and, where known, line and column."""

    def __init__(self, path: str, problem: str, line: int | None = None, column: int | str | None = None):
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.column = column


class ParameterError(ValueError):
    """A parameter value cannot work; the message names the parameter by its dotted path."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"parameter '{name}': {problem}")
        self.name = name


class StaleModelError(ValueError):
    """A saved model was trained on another split than the one the current run reads."""


class StaleInputError(ValueError):
    """A stage's inputs do not all come from the same completed upstream run."""
