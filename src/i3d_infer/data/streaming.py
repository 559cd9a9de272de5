"""Dense clips of a video of any length in one decoding pass, in bounded memory: decode -> sample -> resize, streamed.

The clips are mmaction2's ``UntrimmedSampleFrames`` (:func:`i3d_infer.data.sampling.untrimmed_frame_indices`), but
the video's length is not known until its last frame: a clip is handed on as soon as its last frame is decoded, and
a decoded frame is kept (resized) only while a clip not yet handed on takes it, plus the latest frame (the clips of
the end, clamped to the last frame, take it once the stream ends). So the frames held never exceed one clip's span
plus a chunk, whatever the length; a ``ClipChunk`` carries a few clips' distinct frames at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import VideoError
from .decode import FrameSource
from .sampling import DenseClips


@dataclass(frozen=True)
class ClipChunk:
    """Consecutive clips of one video: their distinct frames and where each clip's frames are among them."""

    first_clip: int  # the number of the chunk's first clip in the video
    frames: np.ndarray  # uint8 (F, H, W, 3) RGB, resized, in frame order
    table: np.ndarray  # int64 (clips, clip_len): the row of ``frames`` of every clip slot
    frame_indices: np.ndarray  # int64 (clips, clip_len): the video's frame numbers (clamped to the video)
    centres: np.ndarray  # int64 (clips,): each clip's centre frame
    seconds: np.ndarray  # float64 (clips, 3): timestamps of each clip's first, centre and last frame (NaN: none)

    @property
    def num_clips(self) -> int:
        return self.table.shape[0]


@dataclass
class StreamEnd:
    """What the stream learns by the time the video ends."""

    num_frames: int = 0
    num_clips: int = 0
    fps: float | None = None  # the container's frame rate (None: unknown, e.g. rawframes)
    decoder: str = ""
    max_frames_held: int = 0  # the most decoded frames held at once (the memory bound, measured)


def stream_clips(
    source: FrameSource,
    clips: DenseClips,
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    chunk: int = 8,
    end: StreamEnd | None = None,
) -> Iterator[ClipChunk]:
    """Decode ``source`` once, yielding its dense clips up to ``chunk`` at a time as their frames arrive (each kept
    frame ``transform``-ed once: the resize). ``end``, if given, is filled in when the stream ends.

    Raises:
        VideoError: the video cannot be opened or has no decodable frame (before any chunk).
    """
    end = end if end is not None else StreamEnd()
    window = _Window(clips, transform)
    for index, lazy in enumerate(source.frames()):
        window.offer(index, lazy, source.last_time)
        while window.complete(latest=index):
            pass
        while len(window.pending) >= chunk:
            yield window.take(chunk)
        end.max_frames_held = max(end.max_frames_held, len(window.held))
    count = window.latest + 1
    if count == 0:
        raise VideoError(f"{source.path}: no decodable frames")
    while window.complete(latest=count - 1, last=count - 1 if clips.clamp_tail else None):
        pass
    if window.next_clip == 0:  # shorter than the first centre: one clip on the middle frame (mmaction2 has none)
        if not clips.clamp_tail:  # start-aligned windows of whole frames only: none fits
            raise VideoError(f"{source.path}: {count} frames, fewer than one window of {clips.clip_len} (--tail pad)")
        window.add(count // 2, last=count - 1)
    while window.pending:
        yield window.take(chunk)
    end.num_frames, end.num_clips = count, window.emitted
    end.fps, end.decoder = source.fps, source.used


class _Window:
    """The held frames a clip not yet handed on takes, and the clips whose frames are all there."""

    def __init__(self, clips: DenseClips, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        self.clips, self.transform = clips, transform
        self.steps = clips.steps  # a clip's offsets from its centre
        self.held: dict[int, np.ndarray] = {}  # frame number -> resized frame
        self.times: list[float] = []  # every decoded frame's timestamp (8 bytes a frame), NaN where there is none
        self.latest = -1
        self.untaken: int | None = None  # the latest frame, held though no clip takes it
        self.next_clip = 0  # the first clip not yet complete
        self.pending: list[tuple[np.ndarray, int]] = []  # complete clips not yet handed on: (frames, centre)
        self.emitted = 0

    def offer(self, index: int, lazy, seconds: float | None) -> None:
        """Frame ``index`` decoded: hold it if a clip takes it or while it is the latest; forget what none takes."""
        self.times.append(np.nan if seconds is None else float(seconds))
        if self.untaken is not None:  # the previous latest frame, which no clip takes
            del self.held[self.untaken]
        self.held[index] = lazy(self.transform)
        self.untaken = None if self._taken(index) else index
        self.latest = index
        self._release()

    def _taken(self, index: int) -> bool:
        """Whether clip ``next_clip`` or a later one takes frame ``index`` (before the video's end is known)."""
        if index < self.clips.centre(0):
            return True  # the video may yet be too short for a centre: its one clip may take any frame so far
        c0, step = self.clips.centre(0), self.clips.clip_interval
        low, high = int(self.steps[0]), int(self.steps[-1])
        j_low = max(self.next_clip, -((c0 - index + high) // step))  # ceil((index - high - c0) / step)
        for j in range(j_low, (index - low - c0) // step + 1):
            if (index - self.clips.centre(j) - low) % self.clips.frame_interval == 0:
                return True
        return False

    def _release(self) -> None:
        """Forget the held frames below every clip not yet handed on (never the latest one)."""
        if self.latest < self.clips.centre(0):
            return
        floor = max(self.clips.centre(self.next_clip) + int(self.steps[0]), 0)
        floor = min([floor, *(int(frames[0]) for frames, _ in self.pending)])
        while self.held:
            index = next(iter(self.held))  # held in frame order
            if index >= floor or index == self.latest:
                return
            del self.held[index]

    def complete(self, *, latest: int, last: int | None = None) -> bool:
        """Complete clip ``next_clip`` if its frames are all decoded by frame ``latest`` (``last``: the video's last
        frame, once it ended: a clip centred before it then clamps to it). True if one was completed."""
        centre = self.clips.centre(self.next_clip)
        if (centre > last) if last is not None else (centre + int(self.steps[-1]) > latest):
            return False
        self.add(centre, last=last)
        self.next_clip += 1
        return True

    def add(self, centre: int, *, last: int | None) -> None:
        self.pending.append((self.clips.window(centre, last), centre))

    def take(self, most: int) -> ClipChunk:
        group, self.pending = self.pending[:most], self.pending[most:]
        indices = np.stack([frames for frames, _ in group])
        distinct = np.unique(indices)
        frames = np.stack([self.held[int(i)] for i in distinct])
        centres = np.array([centre for _, centre in group], dtype=np.int64)
        ends = np.stack([indices.min(axis=1), centres, indices.max(axis=1)], axis=1)  # (clips, 3) frames
        seconds = np.array([[self.times[i] for i in row] for row in ends.tolist()], dtype=np.float64)
        chunk = ClipChunk(self.emitted, frames, np.searchsorted(distinct, indices), indices, centres, seconds)
        self.emitted += len(group)
        self._release()
        return chunk
