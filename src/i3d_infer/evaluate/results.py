"""What an evaluation produces, typed: a result per video (a ``results.jsonl`` line), the accuracy, the counts, the
timing and the metrics they make up (``metrics.json``). ``to_json`` gives the exact objects the files hold."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class VideoResult:
    """One listed video: its fused scores, or why it could not be read."""

    index: int  # position in the list
    video: str  # the path as the list writes it
    label: int  # class index
    scores: list[float] | None  # fused class scores (exact float repr on disk); None: unreadable
    error: str | None = None  # one line naming the file and the reason
    decoder: str | None = None  # what decoded it (a GPU decoder's CPU fallback says why)
    streams: dict[str, list[float]] | None = None  # two streams: each stream's own scores ("rgb", "flow")

    @property
    def readable(self) -> bool:
        return self.scores is not None

    @property
    def correct(self) -> bool:
        """Its top-1 class is its label."""
        return self.scores is not None and int(np.argmax(self.scores)) == self.label

    def to_json(self) -> dict:
        record = {
            "index": self.index,
            "video": self.video,
            "label": self.label,
            "scores": self.scores,
            "error": self.error,
            "decoder": self.decoder,
        }
        return record if self.streams is None else {**record, "streams": self.streams}

    def line(self) -> str:
        """Its ``results.jsonl`` line."""
        return json.dumps(self.to_json()) + "\n"

    @classmethod
    def from_json(cls, record: dict) -> VideoResult:
        fields = ("index", "video", "label", "scores", "error", "decoder", "streams")
        return cls(**{k: record.get(k) for k in fields})


@dataclass(frozen=True)
class Accuracy:
    """The seed's three figures, as fractions."""

    top1_acc: float
    top5_acc: float
    mean_class_accuracy: float


@dataclass(frozen=True)
class Counts:
    listed: int  # videos in the list (this shard's)
    readable: int
    failed: int


@dataclass(frozen=True)
class Timing:
    """How long a run took and where it ran (a merge only says what it merged)."""

    wall_seconds: float | None = None
    model_seconds: float | None = None
    waiting_for_data_seconds: float | None = None  # the model's thread waiting for assembled batches
    videos_this_session: int | None = None  # a resumed run counts only its own
    videos_per_s: float | None = None
    device: str | None = None
    workers: int | None = None
    cluster: dict | None = None  # --cluster ray: "cluster", "decode_tasks_per_node", "batches_per_actor"
    merged_from: list[str] | None = None  # i3d merge: the shard run directories

    def to_json(self) -> dict:
        if self.merged_from is not None:
            return {"merged_from": self.merged_from}
        fields = {k: v for k, v in asdict(self).items() if k not in ("cluster", "merged_from")}
        return {**fields, **(self.cluster or {})}


@dataclass(frozen=True)
class Metrics:
    """Everything ``metrics.json`` holds."""

    all_videos: Accuracy  # unreadable videos count as wrong
    readable_videos: Accuracy
    counts: Counts
    failures: list[dict] = field(default_factory=list)  # {"video", "reason"} per unreadable video, list order
    timing: Timing = Timing()
    config: dict = field(default_factory=dict)  # the run's EvalConfig as JSON
    versions: dict = field(default_factory=dict)
    streams: dict[str, Accuracy] | None = None  # two streams: "rgb", "flow" alone and "rgb+flow" (all videos)

    def to_json(self) -> dict:
        streams = {} if self.streams is None else {"streams": {k: asdict(v) for k, v in self.streams.items()}}
        return {
            "all_videos": asdict(self.all_videos),
            "readable_videos": asdict(self.readable_videos),
            "counts": asdict(self.counts),
            "failures": self.failures,
            "timing": self.timing.to_json(),
            "config": self.config,
            "versions": self.versions,
            **streams,
        }
