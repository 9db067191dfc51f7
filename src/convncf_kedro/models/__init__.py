"""The models, in plain PyTorch (no Kedro): MF-BPR and ConvNCF."""

from .convncf import ConvNCF, ConvNCFBPRLoss
from .mf import MF

__all__ = ["MF", "ConvNCF", "ConvNCFBPRLoss", "build_model"]


def build_model(saved: dict) -> MF | ConvNCF:
    """Rebuild a trained model from a saved ``{"model_class", "hyperparameters", "state_dict"}`` dict."""
    classes = {"MF": MF, "ConvNCF": ConvNCF}
    if saved.get("model_class") not in classes:
        raise ValueError(f"unknown model class {saved.get('model_class')!r}; expected one of {sorted(classes)}")
    model = classes[saved["model_class"]](**saved["hyperparameters"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()
