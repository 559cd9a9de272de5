"""Published checkpoints and the preprocessing that travels with them (sampling, resize/crop, mean/std, labels)."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .config import I3DConfig, i3d_nl_dot_product_r50, i3d_r50

SAMPLING_MODES = ("0.x", "1.x")  # test-time clip offsets of mmaction2 0.x and of mmaction2 >= 1.0.0rc2


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
    # published accuracy under this checkpoint's own preprocessing: (view protocol, top-1 %, top-5 %, where) rows
    published: tuple[tuple[str, float, float, str], ...] = ()

    @property
    def filename(self) -> str:
        """The checkpoint's published file name (``..._20200814-7c30d5bb.pth``)."""
        return Path(urllib.parse.urlparse(self.url).path).name

    def with_sampling(self, mode: str | None) -> Weights:
        """These weights with test clips placed by ``mode`` ("0.x" / "1.x"); None keeps the checkpoint's own."""
        if mode is None or mode == self.preprocessing.sampling:
            return self
        if mode not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {mode!r}; choose one of {', '.join(SAMPLING_MODES)}")
        return dataclasses.replace(self, preprocessing=dataclasses.replace(self.preprocessing, sampling=mode))


_MMACTION = "https://download.openmmlab.com/mmaction"
I3D_NL_DOT_PRODUCT_R50_K400 = Weights(
    name="i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb",
    url=f"{_MMACTION}/recognition/i3d/i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb/"
    "i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb_20200814-7c30d5bb.pth",
    architecture=i3d_nl_dot_product_r50,
    preprocessing=Preprocessing(),
    published=(
        ("seed", 70.03, 89.51, "the seed's Ascend ModelZoo README"),
        ("threecrop", 73.92, 91.59, "the mmaction2 model zoo"),
    ),
)
I3D_NL_DOT_PRODUCT_R50_K400_V1 = Weights(
    name="i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb",
    url=f"{_MMACTION}/v1.0/recognition/i3d/i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb/"
    "i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb_20220812-8e1f2148.pth",
    architecture=i3d_nl_dot_product_r50,
    preprocessing=Preprocessing(sampling="1.x"),
    published=(("threecrop", 74.80, 92.07, "the mmaction2 1.x model zoo"),),
)
I3D_R50_K400 = Weights(
    name="i3d_r50_32x2x1_100e_kinetics400_rgb",
    url=f"{_MMACTION}/recognition/i3d/i3d_r50_32x2x1_100e_kinetics400_rgb/"
    "i3d_r50_32x2x1_100e_kinetics400_rgb_20200614-c25ef9a4.pth",
    architecture=i3d_r50,
    preprocessing=Preprocessing(),
)
DEFAULT_WEIGHTS = I3D_NL_DOT_PRODUCT_R50_K400
PUBLISHED = (I3D_NL_DOT_PRODUCT_R50_K400, I3D_NL_DOT_PRODUCT_R50_K400_V1, I3D_R50_K400)


def published_weights(checkpoint: str | os.PathLike | None) -> Weights | None:
    """The published checkpoint a path or URL is: None is the default one; a file is known by its published name
    or by the sha256 prefix its name carries (``...-8e1f2148.pth``); None when it is none of them."""
    if checkpoint is None:
        return DEFAULT_WEIGHTS
    name = Path(urllib.parse.urlparse(str(checkpoint)).path).name
    for weights in PUBLISHED:
        prefix = weights.filename.rsplit("-", 1)[-1]  # "7c30d5bb.pth"
        if name == weights.filename or name.endswith(f"-{prefix}"):
            return weights
    return None


def choose_weights(checkpoint: str | os.PathLike | None, sampling: str | None = None) -> tuple[Weights, str | None]:
    """The description a checkpoint is run with: a published checkpoint's own (:func:`published_weights`), else the
    default's architecture and preprocessing; ``sampling`` ("0.x" / "1.x") overrides its test clips. Also a line
    for the user saying which published checkpoint a given file was recognised as (None otherwise)."""
    weights = published_weights(checkpoint)
    note = None
    if weights is not None and checkpoint is not None:
        note = f"{Path(str(checkpoint)).name} is mmaction2's {weights.name}: {weights.preprocessing.sampling} sampling"
    weights = (weights or DEFAULT_WEIGHTS).with_sampling(sampling)
    return weights, note


def read_labels(path: str | Path | None = None, weights: Weights = DEFAULT_WEIGHTS) -> list[str]:
    """Class names, one per line: ``path`` if given, else the label map shipped for ``weights``."""
    if path is None:
        text = resources.files(__package__).joinpath(weights.labels).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
