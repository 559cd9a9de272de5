"""``i3d features``: a plan through the same stages as the evaluation, with another sampling and output.

decode -> sample (dense clips streamed in one pass, or the test clips) -> resize (decode workers, ``read_clips``)
-> views (crops) -> transport (clips of several videos in one model batch) -> backend (pooled features) -> pool
(each crop, or their mean; class scores through the head) -> outputs (``.npy`` per video, index, failures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from ..data.decode import DEFAULT_DECODER, open_source, read_sampled_frames, worker_threads
from ..data.pipeline import sampler
from ..data.streaming import ClipChunk, StreamEnd, stream_clips
from ..data.transforms import get_protocol, make_views, resize_frame
from ..errors import VideoError
from ..evaluate.metrics import softmax
from ..model.weights import Weights
from ..transport.workers import stream_tasks
from .outputs import JsonLines, save_atomically, video_record
from .plan import FeaturePlan, FeatureTask


@dataclass(frozen=True)
class FeatureJob:
    """The extraction of a list of videos: the plan, the weights' preprocessing, where it runs, where it writes."""

    plan: FeaturePlan
    weights: Weights
    out_dir: Path
    decoder: str = DEFAULT_DECODER
    workers: int = 1  # decode processes (0: decode in this process)
    timeout: float | None = 600.0  # seconds a video may go without a clip
    part: str = ""  # a shard's suffix of the index and failures files ("": the whole list)


@dataclass
class FeatureSummary:
    done: int = 0  # videos extracted now
    skipped: int = 0  # already extracted (their .npy exists)
    failed: list[str] = field(default_factory=list)  # one line each
    clips: int = 0


def read_clips(task: FeatureTask, *, job: FeatureJob, threads: int = 0) -> Iterator[ClipChunk | StreamEnd]:
    """Decode worker: a video's clips, resized, in chunks, then its :class:`StreamEnd`."""
    plan, pre = job.plan, job.weights.preprocessing
    source = open_source(task.path, job.decoder, task.num_frames, threads=threads, offset=task.offset)
    resize = partial(resize_frame, protocol=get_protocol(plan.protocol), size=pre.size)
    if plan.clips == "dense":
        end = StreamEnd()
        yield from stream_clips(source, plan.dense, resize, chunk=plan.chunk, end=end)
        yield end
        return
    count, indices, frames, table = read_sampled_frames(source, sampler(pre), resize)
    centres = indices[:, pre.clip_len // 2]
    per_frame = 1 / source.fps if source.fps else np.nan  # the test clips' seconds from the frame rate
    seconds = np.stack([indices.min(axis=1), centres, indices.max(axis=1)], axis=1) * per_frame
    yield ClipChunk(0, frames, table, indices, centres, seconds)
    yield StreamEnd(count, len(indices), source.fps, source.used, frames.shape[0])


class _Video:
    """One video's clips on their way: features as their batches come back, then the file."""

    def __init__(self, task: FeatureTask) -> None:
        self.task = task
        self.features: dict[int, np.ndarray] = {}  # clip -> (crops, dim)
        self.clips: dict[str, list] = {"first": [], "centre": [], "last": [], "first_s": [], "centre_s": [],
                                       "last_s": []}  # fmt: skip
        self.end: StreamEnd | None = None

    def add(self, chunk: ClipChunk) -> None:
        inds = chunk.frame_indices
        for key, values in (("first", inds.min(axis=1)), ("centre", chunk.centres), ("last", inds.max(axis=1))):
            self.clips[key].extend(values.tolist())
        for k, key in enumerate(("first_s", "centre_s", "last_s")):
            self.clips[key].extend(np.round(chunk.seconds[:, k], 6).tolist())  # (NaN stays NaN: null in JSON)

    @property
    def complete(self) -> bool:
        return self.end is not None and len(self.features) == self.end.num_clips


class _Extraction:
    """The consumer side: clips batched across videos through the backend, finished videos written."""

    def __init__(self, job: FeatureJob, backend, *, head=None, on_video: Callable[[int], None] | None = None):
        self.job, self.backend, self.head, self.on_video = job, backend, head, on_video
        self.protocol = get_protocol(job.plan.protocol)
        self.videos: dict[int, _Video] = {}
        self.queue: list[tuple[_Video, int, np.ndarray]] = []  # (video, clip, views (crops, 3, T, S, S))
        self.summary = FeatureSummary()
        suffix = f".{job.part}" if job.part else ""
        self.index = JsonLines(job.out_dir / f"index{suffix}.jsonl")
        self.failures = JsonLines(job.out_dir / f"failures{suffix}.jsonl")

    def take(self, message) -> None:
        if message.kind == "done":
            return
        video = self.videos.setdefault(message.task.index, _Video(message.task))
        if message.kind == "error":
            self._fail(video, message.value)
        elif isinstance(message.value, ClipChunk):
            self._queue(video, message.value)
        elif isinstance(message.value, StreamEnd):
            video.end = message.value
            self._finish_if_complete(video)

    def _queue(self, video: _Video, chunk: ClipChunk) -> None:
        video.add(chunk)
        views = make_views(chunk.frames[chunk.table], self.protocol, self.job.weights.preprocessing.size)
        views = views.reshape(-1, chunk.num_clips, *views.shape[1:])  # crop-major -> (crops, clips, 3, T, S, S)
        for k in range(chunk.num_clips):
            self.queue.append((video, chunk.first_clip + k, views[:, k]))
        while len(self.queue) >= self.job.plan.batch_size:
            self.run_batch()

    def run_batch(self) -> None:
        batch, self.queue = self.queue[: self.job.plan.batch_size], self.queue[self.job.plan.batch_size :]
        views = np.stack([v for _, _, v in batch])  # (B, crops, 3, T, S, S)
        features = self.backend(views.reshape(-1, *views.shape[2:]))  # (B·crops, dim)
        features = features.reshape(len(batch), views.shape[1], -1)
        for (video, clip, _), feature in zip(batch, features, strict=True):
            video.features[clip] = feature
            self.summary.clips += 1
        for video in {id(v): v for v, _, _ in batch}.values():
            self._finish_if_complete(video)

    def _finish_if_complete(self, video: _Video) -> None:
        if not video.complete or video.task.index not in self.videos:
            return
        del self.videos[video.task.index]
        plan = self.job.plan
        features = np.stack([video.features[k] for k in range(video.end.num_clips)])  # (clips, crops, dim)
        out = features.mean(axis=1) if plan.views == "mean" or features.shape[1] == 1 else features
        save_atomically(video.task.out, out.astype(plan.dtype))
        if plan.scores:
            save_atomically(video.task.out.with_suffix(".scores.npy"), self.scores(features).astype(np.float32))
        if plan.clips == "test":
            save_atomically(video.task.out.with_suffix(".mean.npy"), out.mean(axis=0).astype(plan.dtype))
        clips = {"first": video.clips["first"], "centre": video.clips["centre"], "last": video.clips["last"],
                 "first_seconds": video.clips["first_s"], "centre_seconds": video.clips["centre_s"],
                 "last_seconds": video.clips["last_s"]}  # fmt: skip
        self.index.write(video_record(video.task, video.end, clips, shape=out.shape, out_dir=self.job.out_dir))
        self.summary.done += 1
        if self.on_video:
            self.on_video(video.end.num_clips)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Each clip's class probabilities: the head on every crop's feature, softmax, the crops' mean."""
        weight, bias = self.head
        logits = features.astype(np.float32) @ weight.T + bias  # (clips, crops, classes)
        return softmax(logits, axis=-1).mean(axis=1)

    def _fail(self, video: _Video, error: str) -> None:
        self.videos.pop(video.task.index, None)
        self.queue = [q for q in self.queue if q[0] is not video]
        self.failures.write({"video": video.task.name, "error": error})
        self.summary.failed.append(error)
        if self.on_video:
            self.on_video(0)

    def flush(self) -> None:
        """Run the clips still waiting for a full batch (the input has ended)."""
        while self.queue:
            self.run_batch()

    def close(self) -> None:
        """Close the index and failures files, each video once (a killed run's work stays; nothing more runs)."""
        out_dir = self.job.out_dir
        self.index.close(keep=lambda r: r["video"] if (out_dir / r["features"]).exists() else None)
        done = {r for r in _names(self.index.path)}
        self.failures.close(keep=lambda r: None if r["video"] in done else r["video"])


def _names(path: Path) -> set[str]:
    import json

    if not path.exists():
        return set()
    return {json.loads(line)["video"] for line in path.read_text(encoding="utf-8").splitlines()}


def extract_features(job: FeatureJob, tasks: list[FeatureTask], backend, *, head=None, on_video=None) -> FeatureSummary:
    """Extract every task whose ``.npy`` is not there yet (a killed run goes on where it stopped).

    ``backend`` returns the pooled features of uint8 views; ``head`` (the classifier's float32 weight and bias) is
    needed for ``plan.scores``. ``on_video(clips)`` is called once per video finished or failed (progress).
    """
    todo = [task for task in tasks if not task.out.exists()]
    extraction = _Extraction(job, backend, head=head, on_video=on_video)
    extraction.summary.skipped = len(tasks) - len(todo)
    read = partial(read_clips, job=job, threads=worker_threads(job.workers) if job.workers else 0)
    try:
        for message in stream_tasks(read, todo, job.workers, timeout=job.timeout, expected=(VideoError,)):
            extraction.take(message)
        extraction.flush()
    finally:
        extraction.close()
    return extraction.summary
