"""One video in, the model's input out: decode -> sample -> resize (``read_frames``) -> crop (``VideoFrames.views``).

The split matters for speed: what crosses from a decode worker to the model is ``VideoFrames``, each sampled frame
once (overlapping clips share frames; three crops share a frame), and the views are gathered where the model runs
(``transport``). ``read_video`` does both steps in one place for single videos.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from ..errors import VideoError
from ..model.weights import DEFAULT_WEIGHTS, Preprocessing
from .decode import DEFAULT_DECODER, RawframeSource, open_source, read_sampled_frames
from .flow import FlowMethod, FlowTap, flow_images
from .sampling import sample_frame_indices
from .transforms import ViewProtocol, crop_offsets, get_protocol, make_views, resize_frame


@dataclass(frozen=True)
class SampledVideo:
    """What sampling made of one video (the fields its views and its frames share)."""

    path: str  # the video file or rawframe directory
    num_frames: int  # decodable frames (what sampling used)
    frame_indices: np.ndarray  # (num_clips, clip_len) 0-based frame indices
    protocol: str  # name of the view protocol
    decoder: str = field(default="", kw_only=True)  # what decoded it; a hand-over says why ("pyav (opencv: ...)")


@dataclass(frozen=True)
class VideoViews(SampledVideo):
    """The model input of one video."""

    views: np.ndarray  # uint8 (views, 3, clip_len, size, size), crop-major
    flow: np.ndarray | None = field(default=None, kw_only=True)  # two streams: float32 (views, 2, M, size, size)


@dataclass(frozen=True)
class VideoFrames(SampledVideo):
    """The sampled frames of one video, each once, and how its views are made of them."""

    frames: Any  # uint8 (F, H, W, 3) RGB, resized, in frame order: numpy, or torch on the GPU; None in transport
    table: np.ndarray  # int64 (num_clips, clip_len): the row of ``frames`` of every clip slot
    crops: tuple[tuple[int, int], ...]  # top-left (x, y) of each view's crop, mmaction2's order
    size: int  # side of a view (the crop)
    flow: Any = field(default=None, kw_only=True)  # two streams: float32 (M, H, W, 2) fields at the frames' size

    @property
    def num_views(self) -> int:
        return get_protocol(self.protocol).num_crops * self.table.shape[0]

    def views(self) -> VideoViews:
        """The uint8 ``(views, 3, clip_len, size, size)`` views, crop-major (gathered on the host)."""
        clips = self.frames[self.table]  # (F, H, W, 3) -> (num_clips, clip_len, H, W, 3)
        protocol = get_protocol(self.protocol)
        return VideoViews(
            self.path,
            self.num_frames,
            self.frame_indices,
            protocol.name,
            make_views(clips, protocol, self.size),
            flow=None if self.flow is None else make_views(self.flow[None], protocol, self.size),
            decoder=self.decoder,
        )


def read_frames(
    path: str | os.PathLike,
    protocol: str = "seed",
    preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing,
    *,
    decoder: str = DEFAULT_DECODER,
    num_frames: int | None = None,
    allocate: Callable[[tuple[int, ...]], np.ndarray] | None = None,
    threads: int = 0,
    offset: int = 0,
    flow: FlowMethod | None = None,
) -> VideoFrames:
    """Decode a video file or rawframe directory into its sampled, resized frames (each once).

    ``num_frames`` is a rawframe list's ``total_frames``: when given, the path is a rawframe directory and that count
    is used for sampling as is (mmaction2 does the same); otherwise frames are counted. ``allocate(shape)`` gives
    the array the frames are written into (default: a new one). ``threads``: the video decoder's threads (0: one
    per core; a decode worker beside others takes :func:`i3d_infer.data.decode.worker_threads`). ``offset``: a
    rawframe directory's files before its frame 0 (a with-offset list line's). ``flow``: also the flow stream's
    input of a whole-video model, at the frames' size (:func:`with_flow`), TV-L1 computed by that method (a rawframe
    directory's flow images are read back instead).

    Raises:
        VideoError: the video is missing, unreadable or has no decodable frames (message names the file).
    """
    proto = get_protocol(protocol)
    source = open_source(path, decoder, num_frames, threads=threads, offset=offset)
    resize = partial(resize_frame, protocol=proto, size=preprocessing.size)
    tap = flow is not None and not isinstance(source, RawframeSource)  # TV-L1 in the same decoding pass
    source = FlowTap(source, resize, method=flow) if tap else source
    read = read_sampled_frames(source, sampler(preprocessing), resize, allocate=allocate)
    frames = video_frames(path, proto, read, size=preprocessing.crop_size, decoder=source.used)
    if flow is None:
        return frames
    size = frames.frames.shape[2], frames.frames.shape[1]
    return with_flow(frames, (source.fields, flow.label) if tap else flow_images(path, size), preprocessing)


def with_flow(frames: VideoFrames, fields: tuple, preprocessing: Preprocessing) -> VideoFrames:
    """``frames`` with the flow stream's input: ``fields`` = ``(float32 (M, H, W, 2) or a list of (H, W, 2), what
    made them)`` at the frames' size, TV-L1 computed from the video in the same decoding pass (``data.flow.FlowTap``)
    or flow images read back (``data.flow.flow_images``); ``decoder`` says which (``opencv + flow TV-L1``).

    Raises:
        VideoError: fewer fields than the network takes.
    """
    fields, origin = fields
    if len(fields) < preprocessing.min_frames:
        minimum = preprocessing.min_frames
        raise VideoError(f"{frames.path}: {len(fields)} flow fields, fewer than the {minimum} the network takes")
    fields = np.stack(fields) if isinstance(fields, list) else fields
    return replace(frames, flow=fields, decoder=f"{frames.decoder} + flow {origin}")


def sampler(preprocessing: Preprocessing) -> Callable[[int], np.ndarray]:
    """frame count -> the ``(num_clips, clip_len)`` 0-based frame indices the checkpoint's sampling takes."""
    pre = preprocessing
    return partial(
        sample_frame_indices,
        clip_len=pre.clip_len,
        frame_interval=pre.frame_interval,
        num_clips=pre.num_clips,
        mode=pre.sampling,
        min_frames=pre.min_frames,
    )


def video_frames(path, protocol: ViewProtocol, read: tuple, *, size: int, decoder: str = "") -> VideoFrames:
    """The :class:`VideoFrames` of a read: ``(num_frames, indices, frames, table)`` as
    :func:`i3d_infer.data.decode.read_sampled_frames` returns it (``frames`` a host array or a device tensor,
    ``(F, H, W, 3)``)."""
    num_frames, indices, frames, table = read
    crops = tuple(crop_offsets(frames.shape[1], frames.shape[2], protocol.crops, size=size))
    return VideoFrames(str(path), num_frames, indices, protocol.name, frames, table, crops, size, decoder=decoder)


def read_video(
    path: str | os.PathLike,
    protocol: str = "seed",
    preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing,
    *,
    decoder: str = DEFAULT_DECODER,
    num_frames: int | None = None,
    offset: int = 0,
    flow: FlowMethod | None = None,
) -> VideoViews:
    """Read a video file or rawframe directory into the uint8 views the model takes (see :func:`read_frames`).

    Raises:
        VideoError: the video is missing, unreadable or has no decodable frames (message names the file).
    """
    frames = read_frames(
        path, protocol, preprocessing, decoder=decoder, num_frames=num_frames, offset=offset, flow=flow
    )
    return frames.views()
