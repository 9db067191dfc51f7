"""Ranking and metrics shared by validation, evaluation and scoring (no Kedro, no torch)."""
