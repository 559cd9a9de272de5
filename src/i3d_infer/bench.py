"""Throughput measurement like ais_bench: pure inference on random uint8 input, or end to end over real videos.

Throughput is the seed's definition: ``1000 · B / mean ms`` videos/s, one video = V views (10 clips).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial

import numpy as np

from .data.datasets import VideoDataset
from .errors import I3DError
from .machine import versions
from .model.weights import Weights
from .runtime import BackendSpec
from .runtime.base import Backend
from .transport.decoding import Decoding, GpuDecoding
from .transport.stream import gpu_decoding_device


@dataclass(frozen=True)
class BenchRecord:
    """Timings of one backend at one batch size."""

    backend: str
    device: str
    mode: str  # "inference" (random input, compute only) or "e2e" (decode + preprocess + inference)
    batch_size: int  # videos per call
    input_shape: tuple[int, ...]  # (B·V, 3, T, H, W) uint8 views per call
    iters: int
    mean_ms: float
    median_ms: float
    min_ms: float
    max_ms: float
    p99_ms: float
    videos_per_s: float  # 1000 · B / mean_ms
    prepare_ms: float | None = None  # host work + host-to-device copy per call, timed apart (mean)
    peak_gpu_mib: float | None = None  # CUDA: peak memory reserved by torch's allocator (CUDA graph pools included)
    versions: dict = field(default_factory=dict)

    def row(self) -> str:
        """One line of the terminal table."""
        prep = f"{self.prepare_ms:9.2f}" if self.prepare_ms is not None else f"{'-':>9}"
        return (
            f"{self.backend:<18} {self.device:<7} {self.mode:<9} {self.batch_size:>3} {self.mean_ms:>10.1f} "
            f"{self.median_ms:>10.1f} {self.min_ms:>10.1f} {self.max_ms:>10.1f} {self.p99_ms:>10.1f} {prep} "
            f"{self.videos_per_s:>9.3f}"
        )


HEADER = (
    f"{'backend':<18} {'device':<7} {'mode':<9} {'B':>3} {'mean ms':>10} {'median ms':>10} {'min ms':>10} "
    f"{'max ms':>10} {'p99 ms':>10} {'prep ms':>9} {'videos/s':>9}"
)


def _sync(backend: Backend) -> None:
    if backend.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _record(
    backend: Backend | None,
    mode: str,
    batch: int,
    *,
    shape,
    times_ms: list[float],
    prep: float | None,
    device: str = "cpu",
) -> BenchRecord:
    t = np.array(times_ms)
    device = backend.device if backend is not None else device
    peak = None
    if device.startswith("cuda"):
        import torch

        peak = torch.cuda.max_memory_reserved(device) / 2**20
    mean = float(t.mean())
    return BenchRecord(
        backend=getattr(backend, "label", backend.name) if backend is not None else "data path",
        device=device,
        mode=mode,
        batch_size=batch,
        input_shape=tuple(int(s) for s in shape),
        iters=len(t),
        mean_ms=mean,
        median_ms=float(np.median(t)),
        min_ms=float(t.min()),
        max_ms=float(t.max()),
        p99_ms=float(np.percentile(t, 99)),
        videos_per_s=1000.0 * batch / mean,
        prepare_ms=prep,
        peak_gpu_mib=peak,
        versions=versions(),
    )


def bench_inference(
    backend: Backend,
    batch_size: int,
    view_shape: tuple[int, int, int, int, int],
    *,
    warmup: int = 2,
    iters: int = 10,
    seconds: float | None = None,
    progress: bool = True,
    seed: int = 0,
) -> BenchRecord:
    """Time the backend's compute on random uint8 views (never zeros), after ``warmup`` calls.

    Args:
        view_shape: ``(V, 3, T, H, W)``: the views of one video.
        seconds: run for at least this long instead of ``iters`` calls (at least 3 calls).
    """
    from tqdm import tqdm

    views = np.random.default_rng(seed).integers(1, 256, (batch_size * view_shape[0], *view_shape[1:]), np.uint8)
    for _ in range(warmup):
        backend.compute(backend.prepare(views))
    _sync(backend)
    if backend.device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(backend.device)
    compute_ms, prepare_ms = [], []
    started = time.perf_counter()
    total = None if seconds else iters
    with tqdm(total=total, desc=f"{backend.name} B={batch_size}", unit="call", delay=3, disable=not progress) as bar:
        while (len(compute_ms) < 3 or time.perf_counter() - started < seconds) if seconds else len(compute_ms) < iters:
            t0 = time.perf_counter()
            prepared = backend.prepare(views)
            _sync(backend)
            t1 = time.perf_counter()
            backend.compute(prepared)  # returns host logits: synchronised
            t2 = time.perf_counter()
            prepare_ms.append((t1 - t0) * 1000)
            compute_ms.append((t2 - t1) * 1000)
            bar.update(1)
    return _record(
        backend, "inference", batch_size, shape=views.shape, times_ms=compute_ms, prep=float(np.mean(prepare_ms))
    )


def bench_e2e(
    backend: Backend | None,
    dataset,
    batch_size: int,
    *,
    workers: int = 1,
    warmup: int = 1,
    max_videos: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    gpu_decoding=None,
) -> BenchRecord:
    """Time the evaluation's data path and model over the first ``max_videos`` videos of a ``VideoDataset``.

    The same overlapped pipeline as ``i3d eval`` (decode workers, shared memory, batches assembled ahead, the model,
    logits back): a figure per batch is the time between two batches' logits reaching the host; the first
    ``warmup`` batches are not timed. ``backend=None`` runs no model (``--decode-only``): decode, transport and
    batching alone, and the copy to the GPU and the gather there when ``device`` is CUDA. ``gpu_decoding``
    (:class:`i3d_infer.transport.gpu.GpuDecoding`): decode on the GPU, as ``i3d eval --decoder nvdec`` does.
    """
    from tqdm import tqdm

    from .evaluate.rundir import batches_of
    from .transport.stream import feed

    count = min(len(dataset), max_videos or len(dataset))
    batches = batches_of(count, batch_size, (0, 1))
    if len(batches) <= warmup:
        raise ValueError(f"e2e needs more than {warmup} batch(es); got {count} videos at batch size {batch_size}")
    times, shape = [], (0,)
    label = backend.name if backend is not None else "data path"
    with tqdm(total=count, desc=f"{label} e2e B={batch_size}", unit="video", delay=3, disable=not progress) as bar:
        start = time.perf_counter()
        for k, pending in enumerate(
            feed(dataset, batches, backend, decoding=Decoding(workers, gpu=gpu_decoding), device=device)
        ):
            pending.result()
            now = time.perf_counter()
            if k >= warmup:
                times.append((now - start) * 1000 * batch_size / len(pending.batch.samples))  # a short batch in full
                shape = pending.batch.shape or shape
            start = now
            bar.update(len(pending.batch.samples))
    mode = "e2e" if backend is not None else "data-only"
    return _record(backend, mode, batch_size, shape=shape, times_ms=times, prep=None, device=device)


def bench_decode_ceiling(
    dataset,
    workers: int,
    max_videos: int | None = None,
    *,
    progress: bool = True,
    gpu_decoding=None,
    device=None,
    threads: int | None = None,
) -> BenchRecord:
    """The decode ceiling: ``workers`` processes decoding (decode, sample, resize) and sending nothing back, each
    with ``threads`` decoding threads (None: its share of the cores, as the evaluation's workers; 0: FFmpeg's choice);
    with ``gpu_decoding``, its threads decoding into GPU memory (the frames dropped there).

    One figure per video (wall time / videos, as ms per video), so ``videos_per_s`` is comparable to
    :func:`bench_e2e`'s with ``backend=None``.
    """
    from tqdm import tqdm

    from .data.decode import worker_threads
    from .transport.gpu import GpuDecodeStream
    from .transport.workers import run_tasks

    count = min(len(dataset), max_videos or len(dataset))
    if gpu_decoding is not None:
        decoders = GpuDecodeStream(dataset, list(range(count)), gpu_decoding, device=device, batch_size=1)
        label = f"{gpu_decoding.threads} {gpu_decoding.decoder} threads"
    else:
        threads = worker_threads(workers) if threads is None else threads
        decoders = run_tasks(partial(_decode_nothing, dataset, threads=threads), range(count), workers, ordered=False)
        label = f"{workers} processes"
    start = time.perf_counter()
    with tqdm(total=count, desc=f"decode ceiling {label}", unit="video", delay=3, disable=not progress) as bar:
        for _ in decoders:
            bar.update(1)
    per_video_ms = (time.perf_counter() - start) * 1000 / count
    record = _record(None, "decode-ceiling", 1, shape=(0,), times_ms=[per_video_ms], prep=None)
    return replace(record, backend=label)


def _decode_nothing(dataset, index: int, threads: int) -> None:
    dataset.frames(index, threads=threads)


def to_json(records: list[BenchRecord]) -> list[dict]:
    """Records as JSON-ready dicts."""
    return [asdict(r) for r in records]


@dataclass(frozen=True)
class BenchPlan:
    """What ``i3d bench`` measures: a backend on random input, or the evaluation's whole pipeline over a list."""

    spec: BackendSpec | None  # the backend; None: no model (the decode ceiling and the data path)
    weights: Weights  # architecture and preprocessing (the e2e list is read with it)
    batch_sizes: tuple[int, ...]  # videos per call, one record each
    warmup: int = 2  # untimed calls first (e2e: at most 1 batch)
    iters: int = 10  # timed calls
    seconds: float | None = None  # time for at least this long instead of ``iters``
    shape: tuple[int, ...] | None = None  # torch: the views of one video (default: the weights' own view_shape)
    e2e: VideoDataset | None = None  # time the evaluation's pipeline over this dataset instead
    max_videos: int | None = None  # e2e: the first videos only
    workers: int = 1  # e2e: decode processes
    gpu_decoding: GpuDecoding | None = None  # e2e: decode on the GPU
    device: str = "cpu"  # where views are gathered with no model (the data path's copy to a GPU)


def run_bench(plan: BenchPlan, *, log=print) -> list[BenchRecord]:
    """Measure ``plan``, logging the table (:data:`HEADER`, a row per record) as it goes; returns the records.

    Raises:
        I3DError: a model whose static batch or input shape does not fit the plan.
    """
    from .runtime import make_backend

    backend = make_backend(plan.spec, plan.weights) if plan.spec is not None else None
    view_shape = _view_shape(plan, backend)
    records = []
    log(HEADER)
    if backend is None:
        device = gpu_decoding_device(plan.gpu_decoding.decoder) if plan.gpu_decoding else None
        records.append(
            bench_decode_ceiling(
                plan.e2e, plan.workers, plan.max_videos, progress=True, gpu_decoding=plan.gpu_decoding, device=device
            )
        )
        log(records[-1].row())
    for batch in plan.batch_sizes:
        if plan.e2e is not None:
            warmup = min(plan.warmup, 1)
            record = bench_e2e(
                backend,
                plan.e2e,
                batch,
                workers=plan.workers,
                warmup=warmup,
                max_videos=plan.max_videos,
                device=plan.device,
                progress=True,
                gpu_decoding=plan.gpu_decoding,
            )
        else:
            record = bench_inference(
                backend, batch, view_shape, warmup=plan.warmup, iters=plan.iters, seconds=plan.seconds
            )
        records.append(record)
        log(record.row())
        if backend is None:
            log(f"data path / decode ceiling: {record.videos_per_s / records[0].videos_per_s:.3f}")
    return records


def _view_shape(plan: BenchPlan, backend) -> tuple[int, ...] | None:
    """The views of one video for ``bench_inference``: an exported model's own, or the plan's for torch."""
    if backend is None:
        return None
    own = plan.weights.preprocessing.view_shape
    if plan.spec.backend == "torch":
        return plan.shape or own
    if plan.shape:
        raise I3DError("--shape is for the torch backend; an ONNX model has its own input shape")
    if backend.batch and any(b != backend.batch for b in plan.batch_sizes):
        raise I3DError(
            f"{plan.spec.model} has a static batch of {backend.batch}; use --batch-sizes {backend.batch} "
            "or export with --dynamic-batch"
        )
    free = zip(backend.view_shape, own[1:], strict=True)  # a free axis (dynamic time) takes the weights' own size
    return (backend.views_per_video, *(size if size is not None else default for size, default in free))
