"""What ``i3d features`` (and ``i3d predict --timeline``) extract, and where each video's output goes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..data.flow import FlowMethod
from ..data.sampling import DenseClips
from ..data.transforms import get_protocol
from ..errors import I3DError

CLIP_KINDS = ("dense", "test")  # dense: UntrimmedSampleFrames; test: the evaluation's test clips
VIEW_KINDS = ("each", "mean")  # a feature per crop, or their mean
DTYPES = ("float32", "float16")  # of the written features (--half: float16)


@dataclass(frozen=True)
class FeaturePlan:
    """Which clips, which views, what is written: the whole description of an extraction (``features.json``)."""

    clips: str = "dense"
    dense: DenseClips = field(default_factory=DenseClips)
    protocol: str = "centercrop"
    views: str = "each"
    dtype: str = "float32"
    scores: bool = False  # also each clip's class probabilities (prob fusion over its crops)
    batch_size: int = 8  # clips per model call, filled across video boundaries
    chunk: int = 8  # clips per message from a decode worker
    fps: float | None = None  # frames resampled to this rate by timestamp before clips are placed (None: as decoded)
    flow: FlowMethod | None = None  # two streams: each window's RGB features, then its flow's (TV-L1 by this method)

    def __post_init__(self) -> None:
        if self.clips not in CLIP_KINDS:
            raise I3DError(f"--clips must be one of {', '.join(CLIP_KINDS)}, got {self.clips!r}")
        if self.views not in VIEW_KINDS:
            raise I3DError(f"--views must be one of {', '.join(VIEW_KINDS)}, got {self.views!r}")
        if self.dtype not in DTYPES:
            raise I3DError(f"unknown feature dtype {self.dtype!r}")
        if self.batch_size < 1:
            raise I3DError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.fps is not None and not self.fps > 0:
            raise I3DError(f"--fps must be positive, got {self.fps}")
        get_protocol(self.protocol)

    @property
    def streams(self) -> str:
        return "rgb" if self.flow is None else "rgb+flow"

    @property
    def crops(self) -> int:
        return get_protocol(self.protocol).num_crops

    def feature_shape(self, num_clips: int, dim: int) -> tuple[int, ...]:
        """The shape of one video's feature array."""
        return (num_clips, dim) if self.crops == 1 or self.views == "mean" else (num_clips, self.crops, dim)


@dataclass(frozen=True)
class FeatureTask:
    """One video to extract: where it is, what it is called in the outputs, where its features go."""

    index: int  # position in the input list
    path: Path  # the video file or rawframe directory
    name: str  # as the list names it (or the argument's file name)
    out: Path | None  # its .npy file (None: the result is kept in memory, e.g. a timeline's)
    num_frames: int | None = None  # a rawframe list's stated count
    offset: int = 0  # a with-offset rawframe list's


def plan_outputs(entries: list[tuple], out_dir: str | os.PathLike) -> list[FeatureTask]:
    """The task of every ``(path, name[, num_frames, offset])``: its features at ``out_dir / name`` with the
    extension ``.npy`` (a rawframe list's stated frame count and offset travel with it).

    Raises:
        I3DError: a name would write outside ``out_dir`` (absolute, or through ``..``) or two would write the same
            file (one line naming them), before anything is extracted.
    """
    out_dir = Path(out_dir)
    tasks, seen = [], {}
    for index, (path, name, *rawframes) in enumerate(entries):
        relative = PurePosixPath(name.replace(os.sep, "/"))
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise I3DError(f"{name}: its features would be written outside {out_dir} (an absolute path or '..')")
        out = out_dir / Path(*relative.parts).with_suffix(".npy")
        if out in seen:
            raise I3DError(f"{name}: its features would overwrite those of {seen[out]} ({out})")
        seen[out] = name
        tasks.append(FeatureTask(index, Path(path), name, out, *rawframes))
    return tasks
