"""i3d-infer: I3D non-local video action recognition (mmaction2 checkpoints), offline and fast.

Data flows decode -> sample -> preprocess (``data``) -> backend (``runtime``) -> fuse -> metrics (``evaluate``).
"""

from .data.pipeline import VideoViews, read_video
from .errors import CheckpointError, DownloadError, I3DError, VideoError
from .evaluate.metrics import fuse_clips, mean_class_accuracy, top_k_accuracy
from .model.config import I3DConfig, i3d_nl_dot_product_r50, i3d_r50
from .model.weights import DEFAULT_WEIGHTS, Preprocessing, Weights, read_labels
from .predict import Prediction, Predictor

# These need torch: imported on first use, so that `i3d lists`, `i3d extract`, `--help`... start without it.
_NEED_TORCH = {"I3D": ".model.i3d", "build_model": ".model.checkpoint", "load_model": ".model.checkpoint"}


def __getattr__(name: str):
    if name in _NEED_TORCH:
        import importlib

        return getattr(importlib.import_module(_NEED_TORCH[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "DEFAULT_WEIGHTS",
    "I3D",
    "CheckpointError",
    "DownloadError",
    "I3DConfig",
    "I3DError",
    "Prediction",
    "Predictor",
    "Preprocessing",
    "VideoError",
    "VideoViews",
    "Weights",
    "build_model",
    "fuse_clips",
    "i3d_nl_dot_product_r50",
    "i3d_r50",
    "load_model",
    "mean_class_accuracy",
    "read_labels",
    "read_video",
    "top_k_accuracy",
]
