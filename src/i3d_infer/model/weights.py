"""Published checkpoints and the preprocessing that travels with them (sampling, resize/crop, mean/std, labels)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .config import I3DConfig, i3d_nl_dot_product_r50, i3d_r50


@dataclass(frozen=True)
class Preprocessing:
    """How frames become the network's input; every backend and evaluator reads these from here."""

    clip_len: int = 32  # frames per clip
    frame_interval: int = 2  # stride between sampled frames
    num_clips: int = 10  # clips per video at test time
    sampling: str = "0.x"  # test-time clip offsets: "0.x" (the seed's mmaction2) or "1.x" (spec §2.3)
    size: int = 256  # short side after resize, and crop size
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)  # RGB, on 0..255 values
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)  # RGB


@dataclass(frozen=True)
class Weights:
    """A published checkpoint: where it lives, which network it fits and how its inputs are prepared."""

    name: str  # mmaction2's config name of the checkpoint
    url: str  # download address; the file name ends in -<first 8 hex of sha256>.pth
    architecture: Callable[[], I3DConfig]  # builder of the network the checkpoint fits
    preprocessing: Preprocessing  # test-time data pipeline of the checkpoint
    labels: str = "kinetics400_labels.txt"  # class names, one per line, in training order (package data)
    top1: float | None = None  # published top-1 (%) under the seed protocol, for reference
    top5: float | None = None  # published top-5 (%) under the seed protocol


_MMACTION = "https://download.openmmlab.com/mmaction"
I3D_NL_DOT_PRODUCT_R50_K400 = Weights(
    name="i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb",
    url=f"{_MMACTION}/recognition/i3d/i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb/"
    "i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb_20200814-7c30d5bb.pth",
    architecture=i3d_nl_dot_product_r50,
    preprocessing=Preprocessing(),
    top1=70.03,
    top5=89.51,
)
I3D_NL_DOT_PRODUCT_R50_K400_V1 = Weights(
    name="i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb",
    url=f"{_MMACTION}/v1.0/recognition/i3d/i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb/"
    "i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb_20220812-8e1f2148.pth",
    architecture=i3d_nl_dot_product_r50,
    preprocessing=Preprocessing(sampling="1.x"),
)
I3D_R50_K400 = Weights(
    name="i3d_r50_32x2x1_100e_kinetics400_rgb",
    url=f"{_MMACTION}/recognition/i3d/i3d_r50_32x2x1_100e_kinetics400_rgb/"
    "i3d_r50_32x2x1_100e_kinetics400_rgb_20200614-c25ef9a4.pth",
    architecture=i3d_r50,
    preprocessing=Preprocessing(),
)
DEFAULT_WEIGHTS = I3D_NL_DOT_PRODUCT_R50_K400


def read_labels(path: str | Path | None = None, weights: Weights = DEFAULT_WEIGHTS) -> list[str]:
    """Class names, one per line: ``path`` if given, else the label map shipped for ``weights``."""
    if path is None:
        text = resources.files(__package__).joinpath(weights.labels).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
