"""The simple baselines (TopPop, ItemKNN, UserKNN, RP3β, EASE^R, iALS): the models (``models``), one registry of
their fit and search domain (``registry``) and their tuning on validation (``tuning``). No torch, no Kedro."""
