"""``i3d features``: a plan through the same stages as the evaluation, with another sampling and output.

decode -> sample (dense clips streamed in one pass, or the test clips) -> resize (decode workers, ``read_clips``)
-> views (crops) -> transport (clips of several videos in one model batch) -> backend (pooled features) -> pool
(each crop, or their mean; class scores through the head) -> outputs (``.npy`` per video, index, failures).
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..data.decode import DEFAULT_DECODER, GPU_DECODERS, open_source, read_sampled_frames, worker_threads
from ..data.flow import FlowPairedSource
from ..data.pipeline import sampler
from ..data.resample import ResampledSource
from ..data.streaming import ClipChunk, StreamEnd, stream_clips
from ..data.transforms import get_protocol, make_views, resize_frame
from ..errors import I3DError, VideoError
from ..evaluate.metrics import softmax
from ..model.weights import Weights
from ..transport.chunk_slots import ChunkSlots
from ..transport.ray_data import RayOptions
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
    transport: str = "slots"  # decode workers' chunks: through shared-memory slots (the pipe where they do not fit)
    ray: RayOptions | None = None  # decode on a Ray cluster (transport.ray_data.ray_streams), the model here
    gpu_decoders: int = 8  # --decoder nvdec|nvjpeg: decode threads (features.gpu_decode)

    def __post_init__(self) -> None:
        if self.decoder in GPU_DECODERS:
            other = {"--fps": self.plan.fps, "--flow-checkpoint": self.plan.flow, "--cluster ray": self.ray}
            given = [option for option, value in other.items() if value is not None]
            if given:
                raise I3DError(f"--decoder {self.decoder} reads the sampled frames on the GPU: not with {given[0]}")


@dataclass
class FeatureSummary:
    done: int = 0  # videos extracted now
    skipped: int = 0  # already extracted (their .npy exists)
    failed: list[str] = field(default_factory=list)  # one line each
    clips: int = 0
    transport: dict = field(default_factory=dict)  # chunks received through "slots" and through the "pipe"


def read_clips(task: FeatureTask, *, job: FeatureJob, threads: int = 0) -> Iterator[ClipChunk | StreamEnd]:
    """Decode worker: a video's clips, resized, in chunks, then its :class:`StreamEnd`."""
    plan, pre = job.plan, job.weights.preprocessing
    source = open_source(task.path, job.decoder, task.num_frames, threads=threads, offset=task.offset)
    if plan.fps is not None:
        source = ResampledSource(source, plan.fps)
    if plan.streams == "rgb+flow":  # each frame carries the flow to the next: windows of both, one stream
        source = FlowPairedSource(source, pre.size, method=plan.flow)
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


CLIP_FACTS = ("first", "centre", "last", "first_seconds", "centre_seconds", "last_seconds")


@dataclass(frozen=True)
class VideoFeatures:
    """One video's result, as the output stage receives it."""

    task: FeatureTask
    end: StreamEnd  # its frame count, frame rate, decoder
    clips: dict[str, list]  # CLIP_FACTS -> a value per clip (JSON-ready: None where a frame has no timestamp)
    features: np.ndarray  # (clips, dim) or (clips, crops, dim), float32
    scores: np.ndarray | None  # (clips, classes): each clip's probabilities, its crops fused


class FileSink:
    """``i3d features``' outputs: the ``.npy`` files (atomically), ``index.jsonl`` and ``failures.jsonl``."""

    def __init__(self, job: FeatureJob) -> None:
        self.job = job
        suffix = f".{job.part}" if job.part else ""
        self.index = JsonLines(job.out_dir / f"index{suffix}.jsonl")
        self.failures = JsonLines(job.out_dir / f"failures{suffix}.jsonl")

    def video(self, result: VideoFeatures) -> None:
        plan, out = self.job.plan, result.task.out
        save_atomically(out, result.features.astype(plan.dtype))
        if result.scores is not None:
            save_atomically(out.with_suffix(".scores.npy"), result.scores.astype(np.float32))
        if plan.clips == "test":
            save_atomically(out.with_suffix(".mean.npy"), result.features.mean(axis=0).astype(plan.dtype))
        shape = result.features.shape
        self.index.write(video_record(result.task, result.end, result.clips, shape=shape, out_dir=self.job.out_dir))

    def failure(self, task: FeatureTask, error: str) -> None:
        self.failures.write({"video": task.name, "error": error})

    def close(self) -> None:
        """Each video once in the index and failures files (a rerun's lines replace the killed run's); a run of the
        whole list also takes in the lines of its shards' parts (``index.I-of-N.jsonl``)."""
        out_dir, whole = self.job.out_dir, not self.job.part
        parts = sorted(out_dir.glob("index.*-of-*.jsonl")) if whole else []
        self.index.close(keep=lambda r: r["video"] if (out_dir / r["features"]).exists() else None, also=tuple(parts))
        done = _names(self.index.path)
        failed = sorted(out_dir.glob("failures.*-of-*.jsonl")) if whole else []
        self.failures.close(keep=lambda r: None if r["video"] in done else r["video"], also=tuple(failed))


class _Video:
    """One video's clips on their way: features as their batches come back, then the file."""

    def __init__(self, task: FeatureTask) -> None:
        self.task = task
        self.features: dict[int, np.ndarray] = {}  # clip -> (crops, dim)
        self.clips: dict[str, list] = {key: [] for key in CLIP_FACTS}
        self.end: StreamEnd | None = None

    def add(self, chunk: ClipChunk) -> None:
        inds = chunk.frame_indices
        frames = (inds.min(axis=1), chunk.centres, inds.max(axis=1))
        for key, values in zip(CLIP_FACTS, (*frames, *np.round(chunk.seconds, 6).T), strict=True):
            self.clips[key].extend(None if v != v else v for v in values.tolist())  # NaN (no timestamp): None

    @property
    def complete(self) -> bool:
        return self.end is not None and len(self.features) == self.end.num_clips


class _Extraction:
    """The consumer side: clips batched across videos through the backend, finished videos written."""

    def __init__(self, job: FeatureJob, backend, *, sink, head=None, on_video: Callable[[int], None] | None = None):
        self.job, self.backend, self.sink, self.head, self.on_video = job, backend, sink, head, on_video
        self.protocol = get_protocol(job.plan.protocol)
        self.videos: dict[int, _Video] = {}
        self.queue: list[tuple[_Video, int, np.ndarray]] = []  # (video, clip, views (crops, 3, T, S, S))
        self.summary = FeatureSummary()

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
        clips = chunk.frames[chunk.table]  # a GPU reader's frames: on the GPU, the views made here for now
        clips = clips.cpu().numpy() if torch.is_tensor(clips) else clips
        views = make_views(clips, self.protocol, self.job.weights.preprocessing.crop_size)
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
        clips, crops, dim = features.shape
        out = features if plan.feature_shape(clips, dim) == (clips, crops, dim) else features.mean(axis=1)
        scores = self.scores(features) if plan.scores else None
        self.sink.video(VideoFeatures(video.task, video.end, video.clips, out, scores))
        self.summary.done += 1
        if self.on_video:
            self.on_video(video.end.num_clips)

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """Each clip's class probabilities: the head on every crop's feature (no head: the backend gives logits),
        softmax, the crops' mean."""
        logits = outputs if self.head is None else outputs.astype(np.float32) @ self.head[0].T + self.head[1]
        return softmax(logits, axis=-1).mean(axis=1)  # (clips, crops, classes) -> (clips, classes)

    def _fail(self, video: _Video, error: str) -> None:
        self.videos.pop(video.task.index, None)
        self.queue = [q for q in self.queue if q[0] is not video]
        self.sink.failure(video.task, error)
        self.summary.failed.append(error)
        if self.on_video:
            self.on_video(0)

    def flush(self) -> None:
        """Run the clips still waiting for a full batch (the input has ended)."""
        while self.queue:
            self.run_batch()


def _names(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["video"] for line in path.read_text(encoding="utf-8").splitlines()}


def extract_features(
    job: FeatureJob, tasks: list[FeatureTask], backend, *, head=None, on_video=None, sink=None, reader=None
) -> FeatureSummary:
    """Extract every task whose ``.npy`` is not there yet (a killed run goes on where it stopped).

    ``backend`` returns the pooled features of uint8 views; ``head`` (the classifier's float32 weight and bias)
    gives ``plan.scores`` from them (None: the backend returns logits, which are then the scores' input and the
    output). ``on_video(clips)`` is called once per video finished or failed (progress).
    ``sink``: the output stage (``video(VideoFeatures)``, ``failure(task, error)``, ``close()``); default the files
    of :class:`FileSink`. ``reader``: with a GPU ``job.decoder``, what makes a decode thread's reader (tests; default
    the decoder's own, on the backend's GPU).
    """
    if job.plan.flow is not None:  # the torch TV-L1 on a GPU decodes in this process
        job = replace(job, workers=job.plan.flow.workers(job.workers))
    sink = sink or FileSink(job)
    todo = [task for task in tasks if task.out is None or not task.out.exists()]
    extraction = _Extraction(job, backend, sink=sink, head=head, on_video=on_video)
    extraction.summary.skipped = len(tasks) - len(todo)
    read = partial(read_clips, job=job, threads=1 if job.ray else worker_threads(job.workers) if job.workers else 0)
    slots = _chunk_slots(job)
    if slots is not None:
        read = partial(_through, read=read, slots=slots)
    messages = _messages(job, read, todo) if job.decoder not in GPU_DECODERS else _gpu(job, todo, backend, reader)
    try:
        for message in messages:
            item, slot = (message.value, None) if slots is None else slots.receive(message.value)
            extraction.take(replace(message, value=item))
            if slots is not None:
                slots.release(slot)  # its views are copied
        extraction.flush()
    finally:
        sink.close()
        if slots is not None:
            extraction.summary.transport = dict(slots.sent)
            slots.close()
    return extraction.summary


def _messages(job: FeatureJob, read, todo: list[FeatureTask]) -> Iterator:
    """The decode stage's messages: local worker processes, or Ray's decode tasks (``--cluster ray``)."""
    if job.ray is None:
        yield from stream_tasks(read, todo, job.workers, timeout=job.timeout, expected=(VideoError,))
        return
    from ..transport.ray_data import connected, ray_streams

    with connected(job.ray):
        yield from ray_streams(read, todo, workers=job.workers, timeout=job.timeout)


def _gpu(job: FeatureJob, todo: list[FeatureTask], backend, reader) -> Iterator:
    """The decode stage on GPU threads (``features.gpu_decode``); the CPU path in this process for what they hand
    back."""
    from ..data.gpu.decode import make_reader
    from ..transport.stream import gpu_decoding_device
    from .gpu_decode import gpu_messages

    device = torch.device("cpu") if reader else gpu_decoding_device(job.decoder)
    if not reader and getattr(backend, "input_device", None) is not None:
        device = torch.device(backend.input_device)  # the model's GPU
    protocol, size = get_protocol(job.plan.protocol), job.weights.preprocessing.size
    reader = reader or partial(make_reader, job.decoder, device, protocol, size=size)
    read_cpu = partial(read_clips, job=replace(job, decoder=DEFAULT_DECODER))
    return gpu_messages(job, todo, read_cpu=read_cpu, make_reader=reader, threads=job.gpu_decoders, device=device)


def _chunk_slots(job: FeatureJob) -> ChunkSlots | None:
    """Shared memory for the workers' chunks: two slots a worker and two more (None: no workers, or the pipe)."""
    local = job.ray is None and job.decoder not in GPU_DECODERS and "fork" in mp.get_all_start_methods()
    if job.transport == "pipe" or not job.workers or not local:
        return None
    plan, pre = job.plan, job.weights.preprocessing
    dense = plan.clips == "dense"
    flow = plan.flow is not None  # items carry their flow: float32 (h, w, 5)
    return ChunkSlots(
        2 * job.workers + 2, chunk=plan.chunk if dense else pre.num_clips,
        clip_len=plan.dense.clip_len if dense else pre.clip_len, size=pre.size, protocol=plan.protocol,
        channels=5 if flow else 3, dtype=np.float32 if flow else np.uint8,
    )  # fmt: skip


def _through(task: FeatureTask, *, read, slots: ChunkSlots):
    """Decode worker: ``read``'s items, each chunk's frames put in a slot when one fits and is free."""
    for item in read(task):
        yield slots.send(item)
