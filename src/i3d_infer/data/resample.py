"""A video's frames at another frame rate, by timestamp: decode -> resample -> sample (``i3d features --fps``).

DeepMind sampled Kinetics at 25 fps before running the Inception I3D; videos come at 24, 30, 60 fps or with variable
rates. Output frame k is the frame on screen at time ``k / fps``: the last decoded frame whose timestamp is at most
``k / fps`` (the first frame for earlier times), for every ``k / fps`` before the end of the last frame's display
(its timestamp plus one frame of the container's rate). Frames are repeated when the rate goes up and skipped when
it goes down, as a player shows them (FFmpeg's ``fps`` filter rounds to the nearest frame instead; ours never shows a
frame before its time).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import VideoError
from .decode import FrameSource, LazyFrame, finish
from .wrapped import WrappedSource

TIME_SLACK = 1e-6  # seconds: a frame stamped this close after k / fps counts as shown at k / fps (float rounding)


class ResampledSource(WrappedSource):
    """``source``'s frames at ``fps`` (see the module docstring); ``last_time`` is the output frame's ``k / fps``."""

    def __init__(self, source: FrameSource, fps: float) -> None:
        super().__init__(source)
        if not fps > 0:
            raise ValueError(f"--fps must be positive, got {fps}")
        self._fps, self._time = float(fps), None

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def last_time(self) -> float | None:
        return self._time

    def frame_count_hint(self) -> int:
        hint, rate = self.source.frame_count_hint(), self.source.fps
        return round(hint * self.fps / rate) if hint and rate else 0

    def frames(self) -> Iterator[LazyFrame]:
        k, held = 0, None  # the next output frame; the latest decoded frame (RGB, full size) and its time
        for lazy in self.source.frames():
            time = self.source.last_time
            if time is None:
                raise VideoError(f"{self.path}: its frames have no timestamps; --fps needs them")
            while held is not None and k / self.fps < time - TIME_SLACK:  # times before this frame: the held one
                yield from self._emit(held[0], k)
                k += 1
            held = (lazy(None), time)  # converted now: a lazy frame is valid only until the next is decoded
        if held is None:
            return
        shown_until = held[1] + (1 / self.source.fps if self.source.fps else 0.0)
        while k / self.fps < shown_until or k == 0:
            yield from self._emit(held[0], k)
            k += 1

    def _emit(self, frame: np.ndarray, k: int) -> Iterator[LazyFrame]:
        self._time = k / self.fps
        yield lambda transform=None, out=None: finish(frame, transform, out, bgr=False)
