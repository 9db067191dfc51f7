"""Training: BPR triple sampling, the epoch loop with checkpoints and early stopping, torch runtime."""
