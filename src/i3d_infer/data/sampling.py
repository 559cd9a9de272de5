"""Frame sampling, pure index math: the test clips (mmaction2 ``SampleFrames(test_mode=True)``, spec §2.3) and the
dense clips of untrimmed videos (``UntrimmedSampleFrames``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.weights import SAMPLING_MODES, WHOLE_VIDEO

DENSE_RANGE = 64  # DenseSampleFrames' sample_range: the frames one (dense) clip position may span


def clip_offsets(
    num_frames: int, clip_len: int, frame_interval: int, *, num_clips: int, mode: str = "0.x"
) -> np.ndarray:
    """Start frame of each test clip, 0-based, shape ``(num_clips,)``.

    ``0.x`` (the seed's mmaction2): ``floor(arange(k) * avg + avg / 2)`` with ``avg = (N - span + 1) / k`` and
    ``span = clip_len * frame_interval``, all zeros when ``N <= span - 1``. ``1.x`` (mmaction2 >= 1.0.0rc2, whose
    test clips span ``(clip_len - 1) * frame_interval + 1`` frames): ``round(arange(k) * max(N - span1, 0) / (k - 1))``
    (numpy rounds half to even, as mmaction2 does), and ``max(N - span1, 0) // 2`` for a single clip. ``dense``
    (mmaction2's ``DenseSampleFrames`` test mode, 0.x and 1.x alike): ``num_clips`` starts from
    ``linspace(0, max(1, N - 63) - 1, num_clips)`` truncated, i.e. spread over the first ``N - 64 + 1`` frames.
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
    if mode == "dense":  # DenseSampleFrames(test_mode=True, num_clips=1): starts spread over [0, N - range]
        positions = max(1, 1 + num_frames - DENSE_RANGE)
        return np.linspace(0, positions - 1, num=num_clips, dtype=int) % num_frames
    if mode == "1.x":
        max_offset = max(num_frames - ((clip_len - 1) * frame_interval + 1), 0)
        if num_clips == 1:
            return np.array([max_offset // 2], dtype=np.int64)
        return np.round(clips * (max_offset / float(num_clips - 1))).astype(np.int64)
    raise ValueError(f"unknown sampling mode {mode!r}; choose one of {', '.join(SAMPLING_MODES)}")


def sample_frame_indices(
    num_frames: int,
    clip_len: int = 32,
    frame_interval: int = 2,
    *,
    num_clips: int = 10,
    mode: str = "0.x",
    min_frames: int = 1,
) -> np.ndarray:
    """0-based frame indices of every test clip, shape ``(num_clips, clip_len)``; indices past the end loop to 0.

    Rawframe file numbers are these plus one (``img_00001.jpg`` is frame 0). ``mode="whole"`` (the Inception models):
    one clip of every frame, ``(1, num_frames)``; fewer than ``min_frames`` (the network's shortest input) is an
    error.
    """
    if mode == WHOLE_VIDEO:
        if num_frames < max(min_frames, 1):
            raise ValueError(f"{num_frames} frames, fewer than the {min_frames} the network takes")
        return np.arange(num_frames)[None]
    offsets = clip_offsets(num_frames, clip_len, frame_interval, num_clips=num_clips, mode=mode)
    inds = offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval  # (num_clips, clip_len)
    return inds % num_frames


@dataclass(frozen=True)
class DenseClips:
    """Where dense clips go (mmaction2 ``UntrimmedSampleFrames``): ``clip_len`` frames ``frame_interval`` apart,
    centred every ``clip_interval`` frames from frame ``clip_interval // 2``. :func:`windows` places the Inception
    models' start-aligned windows with the same machinery."""

    clip_len: int = 32
    clip_interval: int = 16
    frame_interval: int = 2
    first_centre: int | None = None  # the first clip's centre frame; None: clip_interval // 2 (mmaction2's)
    clamp_tail: bool = True  # clips centred before the last frame repeat it; False: only clips inside the video

    def __post_init__(self) -> None:
        if min(self.clip_len, self.clip_interval, self.frame_interval) < 1:
            raise ValueError(f"clip length, clip interval and frame interval must be >= 1: {self}")

    @property
    def steps(self) -> np.ndarray:
        """A clip's frames' offsets from its centre."""
        f, half = self.frame_interval, self.clip_len // 2
        return np.arange(-half * f, f * (self.clip_len - half), f)

    def centre(self, k: int) -> int:
        """The centre frame of clip ``k``."""
        first = self.clip_interval // 2 if self.first_centre is None else self.first_centre
        return first + k * self.clip_interval

    def window(self, centre: int, last: int | None = None) -> np.ndarray:
        """The clip's frame numbers, clamped at 0 and, once the video's last frame is known, at ``last``."""
        inds = np.maximum(centre + self.steps, 0)
        return inds if last is None else np.minimum(inds, last)


def windows(length: int, stride: int, *, tail: str = "drop") -> DenseClips:
    """Start-aligned windows of ``length`` consecutive frames every ``stride`` frames: window k is frames
    ``[k·stride, k·stride + length)`` (the Inception feature recipes). ``tail="drop"``: only whole windows;
    ``"pad"``: also the windows whose centre frame exists, their missing frames the last frame repeated."""
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {', '.join(TAILS)}, got {tail!r}")
    return DenseClips(length, stride, 1, first_centre=length // 2, clamp_tail=tail == "pad")


TAILS = ("drop", "pad")


def untrimmed_frame_indices(num_frames: int, clips: DenseClips) -> np.ndarray:
    """0-based frame indices of the dense clips of an untrimmed video, ``(num_clips, clip_len)``: mmaction2's
    ``UntrimmedSampleFrames`` (:class:`DenseClips`'s centres below ``num_frames``, each clip clamped to
    ``[0, num_frames - 1]``). A video too short for one centre (mmaction2 gives it no clip and fails) gets one clip
    centred on its middle frame, clamped the same way. Without ``clamp_tail`` (start-aligned windows, ``--tail
    drop``) only the windows whose frames all exist. (The streamed reader, ``data.streaming``, places the same.)

    Raises:
        ValueError: no frames, or (without ``clamp_tail``) fewer than one window's.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    centres = range(clips.centre(0), num_frames, clips.clip_interval)
    if not clips.clamp_tail:
        centres = [c for c in centres if c + clips.steps[-1] <= num_frames - 1]
        if not centres:
            raise ValueError(f"{num_frames} frames, fewer than one window of {clips.clip_len} (--tail pad)")
    return np.stack([clips.window(centre, num_frames - 1) for centre in centres or [num_frames // 2]])
