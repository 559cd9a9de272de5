"""One video in, the model's uint8 views out: decode -> sample -> resize -> crop."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..model.weights import DEFAULT_WEIGHTS, Preprocessing
from .decode import DEFAULT_DECODER, open_source, read_sampled_frames
from .sampling import sample_frame_indices
from .transforms import get_protocol, make_views, resize_frame


@dataclass(frozen=True)
class VideoViews:
    """The model input of one video."""

    path: str  # the video file or rawframe directory
    num_frames: int  # decodable frames (what sampling used)
    frame_indices: np.ndarray  # (num_clips, clip_len) 0-based frame indices
    protocol: str  # name of the view protocol
    views: np.ndarray  # uint8 (views, 3, clip_len, size, size), crop-major


def read_video(
    path: str | os.PathLike,
    protocol: str = "seed",
    preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing,
    decoder: str = DEFAULT_DECODER,
    num_frames: int | None = None,
) -> VideoViews:
    """Read a video file or rawframe directory into the uint8 views the model takes.

    ``num_frames`` is a rawframe list's ``total_frames``: when given, the path is a rawframe directory and that count
    is used for sampling as is (mmaction2 does the same); otherwise frames are counted.

    Raises:
        VideoError: the video is missing, unreadable or has no decodable frames (message names the file).
    """
    proto = get_protocol(protocol)
    pre = preprocessing
    sample = partial(
        sample_frame_indices,
        clip_len=pre.clip_len,
        frame_interval=pre.frame_interval,
        num_clips=pre.num_clips,
        mode=pre.sampling,
    )
    source = open_source(path, decoder, num_frames)
    num_frames, indices, clips = read_sampled_frames(
        source, sample, partial(resize_frame, protocol=proto, size=pre.size)
    )
    return VideoViews(str(path), num_frames, indices, proto.name, make_views(clips, proto, pre.size))
