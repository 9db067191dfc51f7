"""Turning raw interaction logs into indexed splits: format readers and vectorised preparation."""
