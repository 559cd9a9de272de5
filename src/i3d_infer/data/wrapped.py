"""Sources made from another source's frames (resampled by time, paired with their flow, ...)."""

from __future__ import annotations

from .decode import FrameSource


class WrappedSource(FrameSource):
    """A source made from another one's frames (resampled, paired with their flow, ...): its name, what decoded it,
    its frame rate, its times and its count hint are the wrapped source's unless a subclass says otherwise."""

    def __init__(self, source: FrameSource) -> None:
        super().__init__(source.path)
        self.source = source

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def used(self) -> str:
        return self.source.used

    @property
    def fps(self) -> float | None:
        return self.source.fps

    @property
    def last_time(self) -> float | None:
        return self.source.last_time

    def frame_count_hint(self) -> int:
        return self.source.frame_count_hint()
