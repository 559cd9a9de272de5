"""``i3d predict VIDEO --timeline OUT.json|.csv``: what happens when, window by window, in a video of any length.

The windows are the dense clips of ``i3d features`` (the same plan through the same stages, with the predictor's
backend giving logits and its output kept in memory instead of files): each with its first, centre and last frame
and their timestamps, and its top-k classes (the clip's crops fused). ``OUT.png`` draws the leading classes'
probabilities over time, every window's centre marked; the video-level line is the mean of the windows'
probabilities.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import I3DError, VideoError
from ..predict import ClassScore
from .plan import FeaturePlan, FeatureTask
from .run import FeatureJob, VideoFeatures, extract_features

WINDOW_FIELDS = {  # a window's field -> the clip fact it is
    "start_frame": "first", "centre_frame": "centre", "end_frame": "last",
    "start_seconds": "first_seconds", "centre_seconds": "centre_seconds", "end_seconds": "last_seconds",
}  # fmt: skip


@dataclass(frozen=True)
class Timeline:
    """The windows of one video and their class probabilities."""

    video: str
    result: VideoFeatures  # frames, clips (first/centre/last frames and seconds), per-window probabilities
    labels: list[str]
    topk: int

    @property
    def probs(self) -> np.ndarray:
        return self.result.scores  # (windows, classes)

    def top(self, scores: np.ndarray) -> list[ClassScore]:
        return [ClassScore(int(i), self.labels[i], float(scores[i])) for i in np.argsort(scores)[::-1][: self.topk]]

    def windows(self) -> list[dict]:
        """A record per window: its start, centre and end frame and their timestamps, and its top-k."""
        clips = self.result.clips
        return [
            {"window": k, **{name: clips[key][k] for name, key in WINDOW_FIELDS.items()},
             "topk": [c.__dict__ for c in self.top(scores)]}
            for k, scores in enumerate(self.probs)
        ]  # fmt: skip

    def to_json(self) -> dict:
        end = self.result.end
        return {
            "video": self.video,
            "num_frames": end.num_frames,
            "fps": end.fps,
            "decoder": end.decoder,
            "windows": self.windows(),
            "video_topk": [c.__dict__ for c in self.top(self.probs.mean(axis=0))],
        }


class _Keep:
    """The output stage of a timeline: the one video's result, in memory."""

    def __init__(self) -> None:
        self.result: VideoFeatures | None = None
        self.error: str | None = None

    def video(self, result: VideoFeatures) -> None:
        self.result = result

    def failure(self, task, error: str) -> None:
        self.error = error

    def close(self) -> None:
        pass


def predict_timeline(predictor, video: str | os.PathLike, plan: FeaturePlan, *, topk: int = 5) -> Timeline:
    """The timeline of ``video`` with the ``predictor``'s backend (its logits, any backend), weights, labels and
    decoder; ``plan`` places the windows and picks the protocol.

    Raises:
        VideoError: the video cannot be read.
    """
    path = Path(video)
    keep = _Keep()
    plan = dataclasses.replace(plan, scores=True)
    job = FeatureJob(plan, predictor.weights, path.parent, decoder=predictor.decoder, workers=0, timeout=None)
    task = FeatureTask(0, path, path.name, out=None)  # no file: the sink keeps the result
    extract_features(job, [task], predictor.backend, sink=keep)
    if keep.error is not None:
        raise VideoError(keep.error)
    return Timeline(str(video), keep.result, predictor.labels, topk)


def timeline_path(out: str | os.PathLike) -> Path:
    """``out`` if it names a ``.json`` or ``.csv`` file (checked before any decoding)."""
    out = Path(out)
    if out.suffix not in (".json", ".csv"):
        raise I3DError(f"{out}: --timeline writes .json or .csv")
    return out


def write_timeline(timeline: Timeline, out: str | os.PathLike) -> list[Path]:
    """``out`` (``.json`` or ``.csv``) and its picture ``out`` with ``.png``; returns the paths written."""
    out = timeline_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".json":
        out.write_text(json.dumps(timeline.to_json(), indent=1) + "\n")
    else:
        _write_csv(timeline, out)
    picture = out.with_suffix(".png")
    plot_timeline(timeline, picture)
    return [out, picture]


def _write_csv(timeline: Timeline, out: Path) -> None:
    windows = timeline.windows()
    facts = [k for k in windows[0] if k != "topk"]
    ranks = [f"top{r + 1}_{field}" for r in range(timeline.topk) for field in ("label", "prob")]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*facts, *ranks])
        for window in windows:
            tops = [value for c in window["topk"] for value in (c["label"], f"{c['prob']:.6f}")]
            writer.writerow([window[k] for k in facts] + tops)


def plot_timeline(timeline: Timeline, out: Path, classes: int = 5) -> None:
    """The probabilities of the classes that lead some window (the ``classes`` highest of them) over time, each
    window's centre marked along the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs, clips = timeline.probs, timeline.result.clips
    seconds, unit = np.array(clips["centre_seconds"], dtype=float), "s"
    if np.isnan(seconds).any():  # no timestamps (rawframes): the frame numbers
        seconds, unit = np.array(clips["centre"], dtype=float), "frame"
    leaders = np.unique(probs.argmax(axis=1))
    leaders = leaders[np.argsort(probs[:, leaders].max(axis=0))[::-1][:classes]]
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    for c in leaders:
        ax.plot(seconds, probs[:, c], marker="o" if len(seconds) < 60 else None, ms=3, label=timeline.labels[c])
    ax.plot(seconds, np.zeros_like(seconds), "|", color="0.4", ms=8, label="window centres")
    top = float(probs[:, leaders].max())
    ax.set_ylim(-0.03 * min(1.0, 1.1 * top), min(1.0, 1.1 * top))  # near-uniform scores stay readable
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("probability")
    ax.set_title(f"{Path(timeline.video).name}: {len(seconds)} windows")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
