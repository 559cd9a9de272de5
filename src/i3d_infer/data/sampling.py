"""Test-time frame sampling (mmaction2 ``SampleFrames(test_mode=True)``): pure index math, spec §2.3."""

from __future__ import annotations

import numpy as np

from ..model.weights import SAMPLING_MODES


def clip_offsets(
    num_frames: int, clip_len: int, frame_interval: int, *, num_clips: int, mode: str = "0.x"
) -> np.ndarray:
    """Start frame of each test clip, 0-based, shape ``(num_clips,)``.

    ``0.x`` (the seed's mmaction2): ``floor(arange(k) * avg + avg / 2)`` with ``avg = (N - span + 1) / k`` and
    ``span = clip_len * frame_interval``, all zeros when ``N <= span - 1``. ``1.x`` (mmaction2 >= 1.0.0rc2, whose
    test clips span ``(clip_len - 1) * frame_interval + 1`` frames): ``round(arange(k) * max(N - span1, 0) / (k - 1))``
    (numpy rounds half to even, as mmaction2 does), and ``max(N - span1, 0) // 2`` for a single clip.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    clips = np.arange(num_clips)
    if mode == "0.x":
        span = clip_len * frame_interval
        if num_frames > span - 1:
            avg = (num_frames - span + 1) / float(num_clips)
            return (clips * avg + avg / 2.0).astype(np.int64)  # floor: values are non-negative
        return np.zeros(num_clips, dtype=np.int64)
    if mode == "1.x":
        max_offset = max(num_frames - ((clip_len - 1) * frame_interval + 1), 0)
        if num_clips == 1:
            return np.array([max_offset // 2], dtype=np.int64)
        return np.round(clips * (max_offset / float(num_clips - 1))).astype(np.int64)
    raise ValueError(f"unknown sampling mode {mode!r}; choose one of {', '.join(SAMPLING_MODES)}")


def sample_frame_indices(
    num_frames: int, clip_len: int = 32, frame_interval: int = 2, *, num_clips: int = 10, mode: str = "0.x"
) -> np.ndarray:
    """0-based frame indices of every test clip, shape ``(num_clips, clip_len)``; indices past the end loop to 0.

    Rawframe file numbers are these plus one (``img_00001.jpg`` is frame 0).
    """
    offsets = clip_offsets(num_frames, clip_len, frame_interval, num_clips=num_clips, mode=mode)
    inds = offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval  # (num_clips, clip_len)
    return inds % num_frames


def untrimmed_frame_indices(
    num_frames: int, clip_len: int = 32, *, clip_interval: int = 16, frame_interval: int = 2
) -> np.ndarray:
    """0-based frame indices of the dense clips of an untrimmed video, ``(num_clips, clip_len)``: mmaction2's
    ``UntrimmedSampleFrames`` (clip centres at ``clip_interval // 2``, then every ``clip_interval`` frames below
    ``num_frames``; each clip from ``centre - clip_len // 2 * frame_interval`` in steps of ``frame_interval``,
    clamped to ``[0, num_frames - 1]``). A video too short for one centre (mmaction2 gives it no clip and fails)
    gets one clip centred on its middle frame, clamped the same way."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    centres = np.arange(clip_interval // 2, num_frames, clip_interval)
    if centres.size == 0:
        centres = np.array([num_frames // 2])
    steps = np.arange(-(clip_len // 2 * frame_interval), frame_interval * (clip_len - clip_len // 2), frame_interval)
    return np.clip(centres[:, None] + steps[None, :], 0, num_frames - 1)
