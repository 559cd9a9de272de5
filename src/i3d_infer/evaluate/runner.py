"""``i3d eval``: a pipelined, resumable, shardable evaluation over a list file.

Decode workers write each video's frames into shared memory ahead of the model, an assembler thread gathers the
batches' views (on the GPU for the torch backend on CUDA), the model runs in this thread and a writer thread fuses
the logits and appends them to the run directory (``transport.stream``). Batches of ``batch_size`` consecutive
list entries are the unit of work, of sharding (shard I of N takes batches I, I+N, ...) and of durability (each
batch's results are appended to ``results.jsonl`` in one write and fsynced before the batch counts as done).
Because a batch always holds the same videos, a resumed or sharded run feeds the model exactly what an
uninterrupted single run does, so ``result.json`` comes out bit for bit the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data.datasets import Sample, VideoDataset
from ..data.decode import DEFAULT_DECODER, GPU_DECODERS
from ..data.flow import FlowMethod
from ..data.gpu.decode import check_gpu_decoder
from ..errors import I3DError
from ..model.weights import Weights, choose_weights, read_labels
from ..runtime import BackendSpec, make_backend
from ..runtime.two_stream import TwoStreamBackend, flow_stream
from ..transport.decoding import Decoding, GpuDecoding
from ..transport.ray_data import RayOptions
from ..transport.stream import OrderedWriter, Pending, feed, refuse_failures
from .metrics import fuse_clips
from .outputs import RunRecord, write_outputs
from .results import Timing, VideoResult
from .rundir import RESULTS, EvalConfig, batches_of, load_results, prepare_run_dir

__all__ = ["EvalConfig", "RunOptions", "batches_of", "evaluate"]


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; free to change between a run and its resumption."""

    device: str = "cpu"
    threads: int | None = None
    workers: int = 1  # decode processes (Ray: concurrent decode tasks); 0 decodes in the assembler thread
    gpu_decoders: int = 8  # with a GPU decoder: decode threads
    ray: RayOptions | None = None  # run on a Ray cluster (transport.ray_data) instead of this process's pool
    timeout: float = 600.0  # seconds a video's decoding may take
    strict: bool = False  # stop at the first unreadable video
    progress: bool = True


@dataclass(frozen=True)
class _Job:
    """One evaluation as its stages receive it: what to read, what still needs doing, the model and how to run."""

    dataset: VideoDataset  # the list, read with the run's preprocessing and protocol
    todo: list[list[int]]  # the batches (list indices) not on disk yet
    spec: BackendSpec  # the model and where it runs
    weights: Weights  # architecture and preprocessing of the model
    decoding: Decoding  # how the videos are decoded
    options: RunOptions
    fusion: str  # clip fusion
    classes: int  # names in the label map (the model must have as many)
    flow_checkpoint: str | None = None  # two streams: the flow network beside the RGB one


def evaluate(
    config: EvalConfig,
    out_dir: str | os.PathLike,
    options: RunOptions = RunOptions(),
    *,
    resume: bool = False,
    weights: Weights | None = None,
) -> RunRecord:
    """Evaluate ``config`` into ``out_dir`` (see the module docstring); returns the run's record with its metrics.

    ``weights`` (architecture and preprocessing): None takes the published checkpoint's own when
    ``config.checkpoint`` is one, else the default's; ``config.preprocessing`` overrides its preprocessing.

    Raises:
        I3DError: a bad list, model or run directory; with ``options.strict``, the first unreadable video.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    weights = weights or choose_weights(config.checkpoint)[0]
    weights = dataclasses.replace(weights, preprocessing=config.preprocessing or weights.preprocessing)
    config, dataset, decoding = _read(config, options, weights)
    labels = read_labels(config.label_map, weights)
    prepare_run_dir(out, config, resume)
    batches = batches_of(len(dataset), config.batch_size, config.shard)
    done = load_results(out / RESULTS, batches)
    todo = [batch for batch in batches if batch[0] not in done]
    job = _Job(
        dataset, todo, config.backend_spec(options), weights, decoding, options, config.fusion, len(labels),
        flow_checkpoint=config.flow_checkpoint,
    )  # fmt: skip
    bar = tqdm(
        total=sum(len(b) for b in batches), initial=len(done), unit="video", disable=not options.progress,
        dynamic_ncols=True,
    )  # fmt: skip
    started = time.perf_counter()
    with (out / RESULTS).open("a", encoding="utf-8") as sink:
        recorder = _Recorder(sink, config.fusion, bar, done=done, streams=config.flow_checkpoint is not None)
        device, cluster = (_run_on_ray if options.ray is not None else _run_here)(job, recorder)
    bar.close()
    wall = time.perf_counter() - started
    records = load_results(out / RESULTS, batches)
    timing = Timing(
        wall_seconds=wall,
        model_seconds=recorder.model_seconds,
        waiting_for_data_seconds=recorder.waited,
        videos_this_session=recorder.videos,
        videos_per_s=recorder.videos / wall if wall and recorder.videos else None,
        device=device,
        workers=options.workers,
        cluster=cluster,
    )
    listed = [records[i] for batch in batches for i in batch]
    return write_outputs(out, listed, labels, config=config, timing=timing, complete=config.shard[1] == 1)


def _read(config: EvalConfig, options: RunOptions, weights: Weights) -> tuple[EvalConfig, VideoDataset, Decoding]:
    """The list as a dataset, the configuration with what reading it settled (format, preprocessing), and how the
    videos are decoded (a GPU run's CPU side, its share and fallbacks, uses the default CPU decoder)."""
    gpu = config.decoder in GPU_DECODERS
    flow = FlowMethod(config.flow or "opencv", options.device) if config.flow_checkpoint is not None else None
    dataset = VideoDataset(
        config.list_file,
        config.root,
        config.list_format,
        protocol=config.protocol,
        preprocessing=weights.preprocessing,
        decoder=DEFAULT_DECODER if gpu else config.decoder,
        flow=flow,
    )
    if config.flow_checkpoint is not None and (gpu or options.ray is not None):
        where = f"--decoder {config.decoder}" if gpu else "--cluster ray"
        raise I3DError(f"two streams (--flow-checkpoint) run here on CPU-decoded frames (TV-L1 on them), not {where}")
    config = dataclasses.replace(config, list_format=dataset.list_format, preprocessing=weights.preprocessing)
    gpu_decoding = None
    if gpu and options.ray is not None:
        raise I3DError(f"--cluster ray decodes on the cluster's CPUs; --decoder {config.decoder} is for local runs")
    if gpu:
        check_gpu_decoder(config.decoder, dataset.list_format)
        gpu_decoding = GpuDecoding(config.decoder, options.gpu_decoders, config.cpu_share)
    workers = options.workers if flow is None else flow.workers(options.workers)
    return config, dataset, Decoding(workers, options.timeout, gpu_decoding)


def _run_here(job: _Job, recorder: _Recorder) -> tuple[str, None]:
    """This process: decode workers (or GPU decode threads), the model, a writer thread (``transport.stream``)."""
    backend = make_backend(job.spec, job.weights)
    _check_classes(job.classes, backend.num_classes)
    if job.flow_checkpoint is not None:  # one pass, both networks: (RGB logits, flow logits) side by side
        backend = TwoStreamBackend(backend, flow_stream(job.flow_checkpoint, job.spec, job.weights)[0])
    launched = feed(
        job.dataset, job.todo, backend, decoding=job.decoding, strict=job.options.strict, device=job.spec.device
    )
    with contextlib.closing(launched):
        writer = OrderedWriter(recorder)
        try:
            for pending in launched:
                writer.submit(pending)
        finally:
            writer.close()  # every launched batch is on disk before an error goes on
    return backend.device, None


def _run_on_ray(job: _Job, recorder: _Recorder) -> tuple[str, dict]:
    """A Ray cluster through Ray Data (``transport.ray_data``); this process only appends the results. Returns where
    it ran and the cluster's part of the timing."""
    import torch

    from ..transport.ray_data import connected, ray_batches

    threads = job.options.threads or torch.get_num_threads()  # every actor computes with the same thread count
    nodes, actors = Counter(), Counter()
    with connected(job.options.ray) as ray:

        def alive() -> int:
            return sum(node["Alive"] for node in ray.nodes())

        batches = ray_batches(
            job.dataset,
            job.todo,
            job.spec,
            weights=job.weights,
            fuse=partial(fuse_clips, fusion=job.fusion),
            decoding=job.decoding,
            threads=threads,
            options=job.options.ray,
        )
        for done in batches:
            _check_classes(job.classes, next((len(score) for score in done.scores.values()), job.classes))
            if job.options.strict:
                refuse_failures(done.samples)
            nodes.update(done.nodes)
            actors[done.actor] += 1
            recorder.record(done.samples, done.scores, done.seconds, waited=0.0, nodes=alive(), actors=len(actors))
        where = f"ray ({alive()} nodes, {len(actors)} model actors, {job.spec.device})"
    extra = {"cluster": "ray", "decode_tasks_per_node": dict(nodes), "batches_per_actor": dict(actors)}
    return where, extra


def _check_classes(names: int, classes: int) -> None:
    if classes != names:
        raise I3DError(f"the label map has {names} names but the model has {classes} classes")


class _Recorder:
    """The writer thread's work per batch: wait for the logits, fuse them, append the batch and fsync it, then count
    it as done (progress bar: videos/s, running top-1, failures)."""

    def __init__(self, sink, fusion: str, bar, *, done: dict[int, VideoResult], streams: bool = False) -> None:
        self.sink, self.fusion, self.bar, self.streams = sink, fusion, bar, streams
        self.previous = len(done)
        self.hits = sum(r.correct for r in done.values())
        self.failures = sum(not r.readable for r in done.values())
        self.videos, self.model_seconds, self.waited = 0, 0.0, 0.0
        self.started = time.perf_counter()

    def __call__(self, pending: Pending) -> None:
        batch = pending.batch
        logits, seconds = pending.result()
        scores = {} if logits is None else self.scores(logits, batch)
        self.record(batch.samples, scores, seconds, waited=pending.waited)

    def scores(self, logits: np.ndarray, batch) -> dict[int, Any]:
        """Each readable video's fused scores by list index; two streams (``(B·V, 2C)`` logits, RGB then flow):
        ``(fused as DeepMind does, {"rgb": RGB alone, "flow": flow alone})``."""
        fuse = partial(fuse_clips, num_views=batch.views_per_video, fusion=self.fusion)  # (B·V, C) -> (B, C)
        if not self.streams:
            fused = fuse(logits)
            return {s.index: fused[k] for k, s in enumerate(batch.readable)}
        rgb, flow = np.split(logits, 2, axis=1)
        fused, alone = fuse(rgb + flow), {"rgb": fuse(rgb), "flow": fuse(flow)}
        return {s.index: (fused[k], {n: a[k] for n, a in alone.items()}) for k, s in enumerate(batch.readable)}

    def record(self, samples: list[Sample], scores: dict[int, Any], seconds: float, *, waited: float, **shown):
        """Append one batch (its readable videos' fused scores by list index; two streams: (fused, {stream: scores})),
        fsync, then count it as done; ``shown``: more on the progress bar."""
        results = [_result(s, scores.get(s.index)) for s in samples]
        self.sink.write("".join(r.line() for r in results))
        self.sink.flush()
        os.fsync(self.sink.fileno())
        self.model_seconds += seconds
        self.waited += waited
        self.videos += len(samples)
        self.failures += sum(not r.readable for r in results)
        self.hits += sum(r.correct for r in results)
        self.bar.update(len(samples))
        rate = self.videos / (time.perf_counter() - self.started)
        top1 = self.hits / (self.previous + self.videos)
        self.bar.set_postfix(videos_per_s=f"{rate:.3g}", top1=f"{top1:.4f}", failed=self.failures, **shown)


def _result(sample: Sample, score) -> VideoResult:
    """A decoded sample's result: its fused scores (two streams: and each stream's), or why it failed."""
    score, streams = score if isinstance(score, tuple) else (score, None)
    scores = None if score is None else score.tolist()
    streams = None if streams is None else {name: s.tolist() for name, s in streams.items()}
    return VideoResult(sample.index, sample.video_id, sample.label, scores, sample.error, sample.decoder, streams)
