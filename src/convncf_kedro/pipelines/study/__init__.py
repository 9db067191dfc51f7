"""study stage: every variant on several seeds, compared with MF and MF trained longer."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
