"""``i3d predict VIDEO --annotate OUT.mp4``: the video re-encoded with its predictions drawn on every frame.

Like mmaction2's ``demo/demo.py --out-filename``, with more to read: while a clip's frames play, that clip's own
top-3 (its crops fused) is drawn top left (with a timeline, the windows' instead: every frame, like 0.x's
``long_video_demo.py``); the video-level top-3 (all clips fused, what ``predict`` prints) sits
bottom right throughout. Where clips overlap, the clip whose middle frame is nearest is shown; frames no clip
samples show the video-level result only. Encoding: H.264 (libx264, CRF 18, yuv420p, or yuv444p for an odd size)
through PyAV, at the source's frame rate (30 for a rawframe directory); ``lossless`` writes H.264 in RGB with QP 0
(libx264rgb), pixel for pixel the decoded frames apart from the label boxes, for checking, at the price of a file
few players open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .data.decode import open_source
from .errors import I3DError
from .predict import ClassScore, Prediction, Predictor

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of a drawn label box


@dataclass(frozen=True)
class Annotated:
    """What ``annotate`` wrote."""

    path: Path
    frames: int
    size: tuple[int, int]  # (width, height)
    prediction: Prediction
    boxes: list[list[Box]]  # per frame, the boxes drawn on it


def clip_of_frame(frame_indices: np.ndarray, num_frames: int) -> np.ndarray:
    """For every frame, the clip shown while it plays (the nearest middle among clips spanning it), or -1."""
    shown = np.full(num_frames, -1)
    distance = np.full(num_frames, np.inf)
    for clip, indices in enumerate(frame_indices):
        first, last = int(indices.min()), int(indices.max())
        middle = (first + last) / 2
        span = np.arange(first, min(last, num_frames - 1) + 1)
        nearer = np.abs(span - middle) < distance[span]
        shown[span[nearer]], distance[span[nearer]] = clip, np.abs(span - middle)[nearer]
    return shown


def draw_box(frame: np.ndarray, lines: list[str], corner: str) -> Box:
    """White text on a black box in the ``"top-left"`` or ``"bottom-right"`` corner; returns the box."""
    height, width = frame.shape[:2]
    scale = max(0.3, min(width, height) / 600)
    thickness = max(1, round(scale * 1.5))
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(line, font, scale, thickness) for line in lines]
    line_height = max(h + base for (_, h), base in sizes) + 4
    box_w = min(width, max(w for (w, _), _ in sizes) + 10)
    box_h = min(height, line_height * len(lines) + 6)
    x0, y0 = (0, 0) if corner == "top-left" else (width - box_w, height - box_h)
    box = frame[y0 : y0 + box_h, x0 : x0 + box_w]  # a view: text drawn into it cannot leave the box
    box[:] = 0
    for k, line in enumerate(lines):
        cv2.putText(box, line, (5, line_height * (k + 1) - 1), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return x0, y0, x0 + box_w, y0 + box_h


def _lines(title: str, top: list[ClassScore]) -> list[str]:
    return [title] + [f"{c.prob:5.1%} {c.label}" for c in top]


def frame_rate(path: Path) -> Fraction:
    """The source's average frame rate (30 for a rawframe directory or when the container does not say)."""
    if path.is_dir():
        return Fraction(30)
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
    except (av.error.FFmpegError, IndexError):
        rate = None
    return Fraction(rate) if rate else Fraction(30)


def annotate(
    predictor: Predictor,
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    protocol: str = "seed",
    lossless: bool = False,
    progress: bool = True,
    timeline=None,
) -> Annotated:
    """Predict ``video`` and write it to ``out`` with the predictions drawn (see the module docstring);
    ``timeline`` (:class:`i3d_infer.features.timeline.Timeline`): its windows instead of the test clips, top left.

    Raises:
        VideoError: the video cannot be read.
        I3DError: the output cannot be written.
    """
    import av
    from tqdm import tqdm

    path, out = Path(video), Path(out)
    prediction = predictor.predict(path, protocol=protocol, topk=3)
    spans, scores, title = prediction.frame_indices, prediction.clip_scores, "clip"
    if timeline is not None:
        clips = timeline.result.clips
        spans, scores, title = np.array([clips["first"], clips["last"]]).T, timeline.probs, "window"
    shown = clip_of_frame(spans, prediction.num_frames)
    clip_top = [predictor.top(s, 3) for s in scores]
    video_lines = _lines("video", prediction.topk)
    source = open_source(path, predictor.decoder)
    boxes: list[list[Box]] = []
    try:
        container = av.open(str(out), "w")
    except (av.error.FFmpegError, OSError) as e:
        raise I3DError(f"{out}: cannot write a video here ({e})") from e
    stream = None
    size = (0, 0)
    with container, tqdm(total=prediction.num_frames, unit="frame", desc="annotate", disable=not progress) as bar:
        for index, lazy in enumerate(source.frames()):
            if index >= prediction.num_frames:
                break
            frame = np.ascontiguousarray(lazy())  # (H, W, 3) RGB uint8
            if stream is None:
                size = (frame.shape[1], frame.shape[0])
                stream = _open_stream(container, frame_rate(path), size, lossless=lossless)
            drawn = []
            clip = shown[index]
            if clip >= 0:
                drawn.append(draw_box(frame, _lines(f"{title} {clip + 1}/{len(clip_top)}", clip_top[clip]), "top-left"))
            drawn.append(draw_box(frame, video_lines, "bottom-right"))
            boxes.append(drawn)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            bar.update(1)
        if stream is not None:
            for packet in stream.encode(None):
                container.mux(packet)
    return Annotated(out, len(boxes), size, prediction, boxes)


def _open_stream(container, rate: Fraction, size: tuple[int, int], *, lossless: bool):
    width, height = size
    if lossless:
        stream = container.add_stream("libx264rgb", rate=rate, options={"qp": "0"})
        stream.pix_fmt = "rgb24"
    else:
        stream = container.add_stream("libx264", rate=rate, options={"crf": "18"})
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    stream.width, stream.height = width, height
    return stream
