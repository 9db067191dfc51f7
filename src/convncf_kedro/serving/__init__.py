"""Scoring the exported ONNX graph with ONNX Runtime alone (no Kedro, no torch needed)."""
