"""Frame sources: video files (PyAV or OpenCV) and rawframe directories, read in one sequential pass.

Each source yields frames lazily: a frame is only converted to RGB (and resized by the caller) when it is sampled.
The frame count used for sampling is the number of frames actually decoded, never a container header's claim.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ..errors import VideoError
from ..machine import usable_cores
from .conversion import bgr24
from .passes import in_two_passes

# OpenCV's FFmpeg backend reads this when it first opens a file: keep its log lines about damaged input off the
# terminal (our own one-line error names the file instead). A user's own setting wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# lazy(transform=None, out=None) -> one uint8 (H, W, 3) RGB frame, ``transform`` (a resize: it must treat the three
# channels alike, as it may see the decoder's BGR) applied, written into ``out`` when that has the frame's shape
LazyFrame = Callable[..., np.ndarray]
RAWFRAME_PATTERN = re.compile(r"^img_(\d{5,})\.jpg$")


class CannotOpen(VideoError):
    """OpenCV could not open a file (FFmpeg, through PyAV, may still)."""


def count_rawframes(directory: str | os.PathLike) -> int:
    """Number of ``img_NNNNN.jpg`` files in a rawframe directory (what a list's total_frames states)."""
    return sum(1 for name in os.listdir(directory) if RAWFRAME_PATTERN.match(name))


class FrameSource(ABC):
    """Sequential access to the frames of one video."""

    name = ""
    fps: float | None = None  # the container's frame rate, once opened (None: unknown)

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def last_time(self) -> float | None:
        """The timestamp in seconds of the frame last taken from :meth:`frames` (None: the source has none)."""
        return None

    @property
    def used(self) -> str:
        """What decoded the frames taken so far: the source's name, or where it handed the video over and why."""
        return self.name

    @abstractmethod
    def frame_count_hint(self) -> int:
        """The container's claim of the frame count (may be wrong or 0); only used to plan the pass."""

    @abstractmethod
    def frames(self) -> Iterator[LazyFrame]:
        """Every decodable frame in order, as a callable that converts it; valid until the next frame is taken."""


def finish(frame: np.ndarray, transform, out: np.ndarray | None, *, bgr: bool) -> np.ndarray:
    """A decoded frame (OpenCV's BGR, or RGB) -> ``transform``-ed RGB, into ``out`` when it fits. ``transform`` runs
    first: a resize treats the channels alike, so the channel swap is done once, on the smaller frame, straight into
    its destination (the same pixels as swapping first: tests)."""
    frame = frame if transform is None else transform(frame)
    fits = out is not None and out.shape == frame.shape
    if bgr:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=out if fits else None)
    if fits:
        out[...] = frame
        return out
    return frame


def worker_threads(workers: int) -> int:
    """FFmpeg decoding threads for each of ``workers`` processes decoding at once: the cores shared out, at least one.

    FFmpeg's own choice is a thread per core in every process; with a process per core, its frame threading adds
    only hand-overs between threads (bikes.mp4, 2 workers on 2 cores: about 20% more videos/s with one thread each,
    benchmarks/RESULTS.md). The decoded frames are the same whatever the thread count."""
    return max(1, usable_cores() // max(workers, 1))


class PyAVSource(FrameSource):
    """A video file decoded with PyAV (FFmpeg), frame-threaded (``threads``: 0 is FFmpeg's choice, one per core)."""

    name = "pyav"

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        super().__init__(path)
        self.threads = threads

    def open_container(self):
        """The file opened by PyAV, with a video stream (else a one-line :class:`VideoError` naming it)."""
        import av

        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise VideoError(f"{self.path}: cannot open as a video ({_reason(e)})") from e
        if not container.streams.video:
            container.close()
            raise VideoError(f"{self.path}: has no video stream")
        return container

    def frame_count_hint(self) -> int:
        container = self.open_container()
        try:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            if seconds is None and container.duration:
                seconds = container.duration / 1_000_000  # AV_TIME_BASE units
            return round(seconds * float(stream.average_rate)) if seconds and stream.average_rate else 0
        finally:
            container.close()

    def frames(self) -> Iterator[LazyFrame]:
        for frame in self._decoded():
            yield lambda transform=None, out=None, frame=frame: finish(bgr24(frame), transform, out, bgr=True)

    def bgr_frames(self) -> Iterator[np.ndarray]:
        """Every decodable frame as OpenCV would give it (BGR, upright)."""
        return (bgr24(frame) for frame in self._decoded())

    @property
    def last_time(self) -> float | None:
        frame = getattr(self, "_frame", None)
        return None if frame is None else frame.time

    def _decoded(self):
        import av

        container = self.open_container()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.thread_count = self.threads
            self.fps = float(stream.average_rate) if stream.average_rate else None
            decoded = container.decode(stream)
            while True:
                try:
                    self._frame = next(decoded)
                    yield self._frame
                except StopIteration:
                    return
                except av.error.FFmpegError:
                    return  # like cv2.VideoCapture.read(): the decodable frames end at the first failure
        finally:
            container.close()


class OpenCVSource(FrameSource):
    """A video file decoded with ``cv2.VideoCapture`` (what mmaction2's frame extraction uses); ``threads``: its
    FFmpeg decoding threads (0: OpenCV's choice, one per core)."""

    name = "opencv"

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        super().__init__(path)
        self.threads = threads
        self.handed_over = ""  # "pyav (opencv: <why>)" once a video went to PyAV
        self._capture: cv2.VideoCapture | None = None  # while reading: for the frame's timestamp
        self._pyav_source: PyAVSource | None = None

    def _open(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        params = [cv2.CAP_PROP_N_THREADS, self.threads] if self.threads > 0 else []
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_ANY, params)
        if not capture.isOpened():
            raise CannotOpen(f"{self.path}: cannot open as a video (OpenCV could not open it)")
        # upright, as players show it: a decision, not the installed version's default (off in 4.11 only)
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        self.fps = capture.get(cv2.CAP_PROP_FPS) or None
        return capture

    def frame_count_hint(self) -> int:
        try:
            capture = self._open()
        except CannotOpen:
            return PyAVSource(self.path, self.threads).frame_count_hint()
        try:
            return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        finally:
            capture.release()

    @property
    def used(self) -> str:
        return self.handed_over or self.name

    @property
    def last_time(self) -> float | None:
        if self._pyav_source is not None:
            return self._pyav_source.last_time
        return None if self._capture is None else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000

    def _pyav(self, reason: str | None = None) -> PyAVSource:
        """The PyAV source a video OpenCV cannot read goes to (``reason`` recorded in ``used``); PyAV's own error
        (e.g. "has no video stream") when it cannot read it either."""
        if reason is not None:
            self.handed_over = f"pyav (opencv: {reason})"
        self._pyav_source = PyAVSource(self.path, self.threads)
        return self._pyav_source

    def frames(self) -> Iterator[LazyFrame]:
        yield from self._read(lambda capture: lambda transform=None, out=None: finish(
            capture.retrieve()[1], transform, out, bgr=True), "frames")  # fmt: skip

    def bgr_frames(self) -> Iterator[np.ndarray]:
        """Every frame as OpenCV reads it (BGR), until ``read()`` fails: the reference frame extraction's loop."""
        yield from self._read(lambda capture: capture.retrieve()[1], "bgr_frames")

    def _read(self, take, kind: str) -> Iterator:
        """``take(capture)`` after each ``grab()``; a video OpenCV cannot open or decodes no frame of goes to PyAV
        (FFmpeg too, with every decoder of its wheel: e.g. AV1, which OpenCV's wheel cannot decode)."""
        if self.handed_over:  # a second pass over a video already handed over
            yield from self._handed(None, kind)
            return
        try:
            capture = self._open()
        except CannotOpen:
            yield from self._handed("could not open it", kind)
            return
        count = 0
        self._capture = capture
        try:
            while capture.grab():
                count += 1
                yield take(capture)
        finally:
            capture.release()
            self._capture = None
        if count == 0:
            yield from self._handed("no decodable frames", kind)

    def _handed(self, reason: str | None, kind: str) -> Iterator:
        source = self._pyav(reason)
        for item in getattr(source, kind)():
            self.fps = source.fps
            yield item


class RawframeSource(FrameSource):
    """A directory of ``img_00001.jpg``, ``img_00002.jpg``, ... (1-based), decoded like mmaction2 (cv2, BGR->RGB)."""

    name = "rawframes"

    def __init__(self, path: str | os.PathLike, num_frames: int | None = None, *, offset: int = 0) -> None:
        super().__init__(path)
        self.num_frames = num_frames  # a list file's total_frames, used as is (like mmaction2); None: count files
        self.offset = offset  # files before frame 0 (mmaction2's RawframeDataset(with_offset=True) lists)

    def _count(self) -> int:
        if not self.path.is_dir():
            raise VideoError(f"{self.path}: no such rawframe directory")
        if self.num_frames is not None:
            return self.num_frames
        return count_rawframes(self.path)

    def frame_count_hint(self) -> int:
        return self._count()

    def frame_path(self, index: int) -> Path:
        """Path of 0-based frame ``index`` (``img_{offset + index + 1:05d}.jpg``)."""
        return self.path / f"img_{self.offset + index + 1:05d}.jpg"

    def read_frame(self, index: int, transform=None, out: np.ndarray | None = None) -> np.ndarray:
        """Decode 0-based frame ``index`` as uint8 RGB (``transform`` and ``out`` as :data:`LazyFrame` takes them)."""
        path = self.frame_path(index)
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as e:
            raise VideoError(f"{path}: cannot read frame ({e.strerror or e})") from e
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise VideoError(f"{path}: not a readable image")
        return finish(image, transform, out, bgr=True)

    def frames(self) -> Iterator[LazyFrame]:
        for index in range(self._count()):
            yield partial(self.read_frame, index)


DECODERS = {"pyav": PyAVSource, "opencv": OpenCVSource}
GPU_DECODERS = ("nvdec", "nvjpeg")  # data.gpu_decode: video files, rawframe directories
DEFAULT_DECODER = "opencv"  # faster here and what the reference extraction used: benchmarks/RESULTS.md


def open_source(
    path: str | os.PathLike,
    decoder: str = DEFAULT_DECODER,
    num_frames: int | None = None,
    *,
    threads: int = 0,
    offset: int = 0,
) -> FrameSource:
    """A frame source for a video file (with ``decoder`` and its ``threads``, 0: one per core) or a rawframe
    directory (``num_frames``: its stated count; ``offset``: files before its frame 0)."""
    if num_frames is not None or Path(path).is_dir():
        return RawframeSource(path, num_frames, offset=offset)
    try:
        return DECODERS[decoder](path, threads)
    except KeyError:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}") from None


def read_sampled_frames(
    source: FrameSource,
    sample: Callable[[int], np.ndarray],
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    allocate: Callable[[tuple[int, ...]], np.ndarray] | None = None,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Decode a video once, converting and transforming only the sampled frames, each distinct frame once.

    The pass is planned with the header's frame count; if the real count needs other frames (headers lie), a second
    pass with the now exact count is made. Each planned frame is written into its row of ``allocate(shape)`` as it
    is decoded.

    Args:
        source: where the frames come from.
        sample: frame count -> ``(num_clips, clip_len)`` 0-based frame indices.
        transform: applied to each sampled uint8 frame (a resize; it must treat the channels alike: it may see the
            decoder's BGR, swapped to RGB after it).
        allocate: shape -> the uint8 array the distinct frames are written into (e.g. a slot of shared memory);
            None: a new array.

    Returns:
        ``(num_frames, indices, frames, table)``: the decodable frame count, the indices used, the uint8
        ``(F, H, W, 3)`` distinct sampled frames in frame order and the ``(num_clips, clip_len)`` row of ``frames``
        of every index (``frames[table]`` are the clips).

    Raises:
        VideoError: the file cannot be opened or has no decodable frame.
    """
    allocate = allocate or (lambda shape: np.empty(shape, np.uint8))

    def decode_pass(planned: np.ndarray) -> tuple[int, np.ndarray | None]:
        row = {index: k for k, index in enumerate(planned.tolist())}
        frames = None
        count = 0
        for index, lazy in enumerate(source.frames()):
            k = row.get(index)
            if k is not None:  # converted straight into its row (e.g. shared memory): no list of frames, no stacking
                out = None if frames is None else frames[k]
                frame = lazy(transform, out)
                if frames is None:  # the first one tells the shape
                    frames = allocate((len(row), *frame.shape))
                    frames[k] = frame
                elif frame is not out:  # not converted in place
                    if frame.shape != out.shape:
                        raise VideoError(f"{source.path}: frame {index} has another size than the frames before it")
                    out[...] = frame
            count = index + 1
        return count, frames

    return in_two_passes(source.path, source.frame_count_hint(), sample, decode_pass=decode_pass)


def _reason(error: Exception) -> str:
    """A short reason from an FFmpeg error, without the file name it repeats."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).split(":")[0].strip() or type(error).__name__
