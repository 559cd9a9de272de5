"""Optical flow as a stage of the data path: decoded BGR frames -> gray -> (shrink) -> TV-L1 -> flow fields, and the
8-bit images mmaction2's tools write (``../shared/reference/flow.md``).

TV-L1 is OpenCV's own CPU implementation (``cv2.optflow.DualTVL1OpticalFlow``, the contrib wheel) with its defaults,
as mmaction2's ``tools/misc/flow_extraction.py`` calls it; one object per process, reused for a video's pairs (it
carries no state from one pair to the next). Field t is frames t -> t + 1 (N frames give N - 1 fields), channel 0
x (right +), 1 y (down +), in pixels of the frame it was computed on. Its output changes between OpenCV versions
(``remap``'s sub-pixel rounding): :func:`algorithm` records the version with the parameters.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ..errors import I3DError, VideoError
from .decode import FrameSource, RawframeSource
from .transforms import short_side_size
from .wrapped import WrappedSource

BOUND = 20.0  # pixels: what build_rawframes passes to denseflow (-b=20) and flow_extraction.py's default


@dataclass(frozen=True)
class FlowLayout:
    """How one tool names, sizes and quantises flow images."""

    name: str
    pattern: str  # file name of one component's image: .format(axis "x" / "y", index)
    first_index: int  # the first field's number in the names
    shrink: bool  # resize the gray frames to the short side (never up) before TV-L1
    rounding: bool  # quantiser: denseflow's cvRound (True) or mmaction2's truncation (False)


FLOW_LAYOUTS = {
    "denseflow": FlowLayout("denseflow", "flow_{}_{:05d}.jpg", 0, True, True),  # build_rawframes --task flow
    "mmaction2-cpu": FlowLayout("mmaction2-cpu", "{}_{:05d}.jpg", 1, False, False),  # tools/misc/flow_extraction.py
}


def get_layout(name: str) -> FlowLayout:
    try:
        return FLOW_LAYOUTS[name]
    except KeyError:
        raise I3DError(f"unknown flow layout {name!r}; choose one of {', '.join(FLOW_LAYOUTS)}") from None


def tvl1():
    """OpenCV's CPU TV-L1 with its defaults (a one-line error where cv2 lacks the contrib modules)."""
    optflow = getattr(cv2, "optflow", None)
    if optflow is None:
        raise I3DError("optical flow needs OpenCV's contrib modules: pip install opencv-contrib-python-headless")
    return optflow.DualTVL1OpticalFlow_create()


IMPLEMENTATIONS = ("opencv", "torch")


@dataclass(frozen=True)
class FlowMethod:
    """Which TV-L1 computes the fields, where: ``opencv`` (the CPU reference, ``cv2.optflow``) or ``torch`` (the same
    algorithm batched over ``batch`` pairs, ``data.flow_torch``, on ``device``). Small and picklable: decode workers
    build the implementation from it."""

    implementation: str = "opencv"
    device: str = "cpu"
    batch: int = 16

    def __post_init__(self) -> None:
        if self.implementation not in IMPLEMENTATIONS:
            raise I3DError(f"--flow must be one of {', '.join(IMPLEMENTATIONS)}, got {self.implementation!r}")

    @property
    def on_gpu(self) -> bool:
        """torch on a GPU: it must run in the process that owns the GPU (CUDA does not survive ``fork``), so the
        commands that use it decode in that process (``--workers 0``)."""
        return self.implementation == "torch" and self.device.startswith("cuda")

    def workers(self, workers: int) -> int:
        """The decode processes a run may use with this method (see :attr:`on_gpu`); says so when it changes it."""
        if self.on_gpu and workers:
            print(f"i3d: the torch TV-L1 runs on {self.device} in this process: decoding here too (--workers 0)",
                  file=sys.stderr)  # fmt: skip
            return 0
        return workers

    @property
    def label(self) -> str:
        """How outputs name it: ``TV-L1`` (OpenCV's) or ``TV-L1 torch (cuda)``."""
        return "TV-L1" if self.implementation == "opencv" else f"TV-L1 torch ({self.device})"

    def fields(self, grays: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The float32 ``(H, W, 2)`` field of each consecutive pair of uint8 gray frames, in order, holding at most
        ``batch + 1`` frames (torch) or two (opencv)."""
        if self.implementation == "opencv":
            flow, previous = tvl1(), None
            for gray in grays:
                if previous is not None:
                    yield flow.calc(previous, gray, None)
                previous = gray
            return
        from .flow_torch import TVL1Torch

        if not self.on_gpu and multiprocessing.parent_process() is not None:
            import torch  # a decode worker: one thread each (the workers are the parallelism; OpenMP's pool does

            torch.set_num_threads(1)  # not survive fork: with more it would hang)
        flow, frames = TVL1Torch(self.device), []
        for gray in grays:
            frames.append(gray)
            if len(frames) == self.batch + 1:
                yield from flow.consecutive(np.stack(frames)).cpu().numpy()
                frames = frames[-1:]
        if len(frames) > 1:
            yield from flow.consecutive(np.stack(frames)).cpu().numpy()

    def describe(self) -> dict:
        """What computed the flow: for every output's metadata (the implementation, OpenCV's version, the
        parameters)."""
        flow = tvl1()
        names = ("Tau", "Lambda", "Theta", "ScalesNumber", "WarpingsNumber", "Epsilon", "InnerIterations",
                 "OuterIterations", "ScaleStep", "Gamma", "MedianFiltering")  # fmt: skip
        where = "cv2.optflow.DualTVL1OpticalFlow (CPU)"
        if self.implementation == "torch":
            where = f"i3d_infer.data.flow_torch (OpenCV's CPU algorithm in torch, {self.device})"
        return {"algorithm": where, "implementation": self.implementation, "opencv": cv2.__version__,
                **{name: getattr(flow, f"get{name}")() for name in names}}  # fmt: skip


OPENCV = FlowMethod()


def denseflow_size(width: int, height: int, short: int) -> tuple[int, int]:
    """denseflow's ``get_new_size``: ``(w, h)`` with the short side at ``short`` only when it is larger (never up),
    the long side ``round(long / short_side · short)``, half away from zero."""
    if min(width, height) <= short:
        return width, height
    if width < height:
        return short, int(np.floor(height / width * short + 0.5))
    return int(np.floor(width / height * short + 0.5)), short


def resize_gray(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(..., INTER_LINEAR)`` to ``(w, h)``, a no-op when already there."""
    return gray if size == (gray.shape[1], gray.shape[0]) else cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)


def shrink(gray: np.ndarray, short: int) -> np.ndarray:
    """denseflow's resize: to :func:`denseflow_size`."""
    return resize_gray(gray, denseflow_size(gray.shape[1], gray.shape[0], short))


def to_short_side(gray: np.ndarray, short: int) -> np.ndarray:
    """The RGB stream's resize, for the flow stream's gray frames: short side ``short``, up or down."""
    return resize_gray(gray, short_side_size(gray.shape[0], gray.shape[1], short))


def scaled(field: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """A field as the flow network takes it (kinetics-i3d): ``clip(v, -B, B) / B``, float32."""
    return np.clip(field, -bound, bound) / np.float32(bound)


def flow_fields(
    frames: Iterable[np.ndarray], *, resize: Callable | None = None, method: FlowMethod = OPENCV
) -> Iterator[np.ndarray]:
    """The TV-L1 fields of consecutive BGR frames: float32 ``(H, W, 2)``, one per pair, computed by ``method`` on the
    gray frames (``resize``-d first, when given)."""
    grays = (cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in frames)
    return method.fields(grays if resize is None else map(resize, grays))


def quantise(field: np.ndarray, layout: FlowLayout, bound: float = BOUND) -> np.ndarray:
    """One flow component (float32 pixels) as an 8-bit image: denseflow's ``convertFlowToImage`` (clamp, then
    ``cvRound(255 · (v + B) / 2B)`` in double, half to even) or mmaction2's ``flow_to_img`` (float32 clip, ``+ B``,
    ``· 255 / 2B``, truncated)."""
    if layout.rounding:
        scaled = np.rint(255.0 * (field.astype(np.float64) + bound) / (2 * bound))
        return np.where(field > bound, 255, np.where(field < -bound, 0, scaled)).astype(np.uint8)
    clipped = np.clip(field, -bound, bound).astype(np.float32)
    return ((clipped + np.float32(bound)) * np.float32(255 / (2 * bound))).astype(np.uint8)


def image_layout(directory: Path) -> FlowLayout:
    """The layout of a rawframe directory's flow images (``flow_x_00000.jpg`` or ``x_00001.jpg``).

    Raises:
        VideoError: it has none.
    """
    firsts = {layout: layout.pattern.format("x", layout.first_index) for layout in FLOW_LAYOUTS.values()}
    layout = next((layout for layout, name in firsts.items() if (directory / name).is_file()), None)
    if layout is None:
        names = " or ".join(firsts.values())
        raise VideoError(f"{directory}: no flow images ({names}); write them with i3d extract --task flow|both")
    return layout


def read_field(directory: Path, layout: FlowLayout, index: int, *, resize: Callable) -> np.ndarray | None:
    """Field ``index`` (0-based) read back from its x and y images as pytorch-i3d and MediaPipe read them: gray
    uint8, ``resize``-d (values not rescaled, as mmaction2 resizes flow images), ``u8 / 255 · 2 − 1`` (float64, then
    float32): ``(H, W, 2)``, x then y; None past the last one.

    Raises:
        VideoError: an unreadable image (the message names it).
    """
    paths = [directory / layout.pattern.format(axis, layout.first_index + index) for axis in "xy"]
    if not paths[0].is_file():
        return None
    pair = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise VideoError(f"{path}: missing or not an image")
        pair.append(resize(image).astype(np.float64) / 255 * 2 - 1)
    return np.stack(pair, axis=2).astype(np.float32)


def flow_images(directory: str | os.PathLike, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Every field of a rawframe directory's flow images (:func:`read_field`), resized to ``size`` ``(w, h)``, the
    RGB frames' (none when already there: denseflow shrinks to short side 256 as the RGB stream does). Returns
    float32 ``(M, H, W, 2)`` (M: the x images numbered on from the layout's first index) and what they are
    (``"<layout> images"``).

    Raises:
        VideoError: no flow images, or an unreadable one.
    """
    directory = Path(directory)
    layout, fields = image_layout(directory), []
    while (field := read_field(directory, layout, len(fields), resize=partial(resize_gray, size=size))) is not None:
        fields.append(field)
    return np.stack(fields), f"{layout.name} images"


def _frames_and_images(source: FrameSource, resize: Callable) -> Iterator[tuple]:
    """:func:`_frames_and_fields` for a rawframe directory with flow images beside its frames: field t read back
    (:func:`read_field`), until the images end."""
    layout = image_layout(source.path)
    for t, lazy in enumerate(source.frames()):
        field = None if t == 0 else read_field(source.path, layout, t - 1, resize=resize)
        if t and field is None:
            return
        yield lazy(None), source.last_time, field


def _frames_and_fields(source: FrameSource, resize: Callable, *, bound: float, method: FlowMethod) -> Iterator[tuple]:
    """``(RGB frame, its time, the scaled field from the previous frame to it or None)`` for each frame of
    ``source``: gray (``COLOR_RGB2GRAY`` of the RGB frame = ``COLOR_BGR2GRAY`` of the decoder's BGR), ``resize``-d,
    TV-L1 (``method``) on consecutive ones, ``clip(v, -B, B) / B``. Holds the frames ``method`` has not given a field
    for yet (two, or a torch batch)."""
    waiting = deque()  # (RGB frame, its time) of the frames whose field is still to come

    def grays() -> Iterator[np.ndarray]:
        for lazy in source.frames():
            rgb = lazy(None)  # full-size RGB, converted now: a lazy frame is valid only until the next is decoded
            waiting.append((rgb, source.last_time))
            yield resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))

    first = True
    for field in method.fields(grays()):
        if first:  # the first frame has no field to it
            yield *waiting.popleft(), None
            first = False
        yield *waiting.popleft(), scaled(field, bound)
    if waiting:  # a one-frame video
        yield *waiting.popleft(), None


class FlowTap(WrappedSource):
    """``source``'s frames unchanged, while the fields between them (the gray frames ``resize``-d, TV-L1,
    ``clip(v, -B, B) / B``) collect in ``fields`` during a pass over them (the same decoding pass as the RGB frames:
    the whole-video two-stream input, N frames and N - 1 fields)."""

    def __init__(
        self, source: FrameSource, resize: Callable, *, bound: float = BOUND, method: FlowMethod = OPENCV
    ) -> None:
        super().__init__(source)
        self.resize, self.bound, self.method, self.fields = resize, bound, method, []

    def frames(self) -> Iterator:
        self.fields = []  # a second pass (a header that lied) starts over
        for rgb, _, field in _frames_and_fields(self.source, self.resize, bound=self.bound, method=self.method):
            if field is not None:
                self.fields.append(field)
            yield partial(_transformed, rgb=rgb)


def _transformed(transform=None, out=None, *, rgb: np.ndarray) -> np.ndarray:
    return rgb if transform is None else transform(rgb)


class FlowPairedSource(WrappedSource):
    """``source``'s frames each paired with the flow field to the next one: item t is RGB frame t (``transform``-ed
    by the caller, as any frame) and field t (frames t -> t + 1, on the gray frames at the short side ``size``,
    ``clip(v, -B, B) / B``), stacked as float32 ``(h, w, 5)``: N frames give N - 1 items, so a window of items
    ``[kS, kS + L)`` is RGB frames and flow fields ``[kS, kS + L)`` (the last window needs ``kS + L <= N - 1``).
    The caller's transform must give the frame at that short side (the centercrop protocol's resize does). A
    rawframe directory's fields are its flow images read back (:func:`read_field`) at that short side."""

    def __init__(self, source: FrameSource, size: int, *, bound: float = BOUND, method: FlowMethod = OPENCV) -> None:
        super().__init__(source)
        self.size, self.bound, self.method, self._time = size, bound, method, None
        self.images = isinstance(source, RawframeSource)  # a rawframe directory: its flow images, read back

    @property
    def used(self) -> str:
        origin = f"{image_layout(self.path).name} images" if self.images else self.method.label
        return f"{self.source.used} + flow {origin}"

    @property
    def last_time(self) -> float | None:
        return self._time

    def frame_count_hint(self) -> int:
        return max(self.source.frame_count_hint() - 1, 0)

    def frames(self) -> Iterator:
        previous, resize = None, partial(to_short_side, short=self.size)  # previous: (RGB frame, its time)
        pairs = _frames_and_images(self.source, resize) if self.images else None
        for rgb, time, field in pairs or _frames_and_fields(self.source, resize, bound=self.bound, method=self.method):
            if field is not None:
                self._time = previous[1]
                yield partial(_with_flow, rgb=previous[0], field=field)
            previous = (rgb, time)


def _with_flow(transform=None, out=None, *, rgb: np.ndarray, field: np.ndarray) -> np.ndarray:
    """One item of :class:`FlowPairedSource`: the transformed RGB frame and its field, float32 ``(h, w, 5)``."""
    image = rgb if transform is None else transform(rgb)
    if image.shape[:2] != field.shape[:2]:
        raise ValueError(f"the frames are resized to {image.shape[1]}x{image.shape[0]}, the flow is {field.shape}")
    return np.concatenate([image.astype(np.float32), field], axis=2)  # (h, w, 3 + 2)
