"""Tests; also imported by the benchmarks (python -m benchmarks.<name>) for the KedroProject helper."""
