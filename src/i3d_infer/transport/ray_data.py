"""``i3d eval --cluster ray`` (and ``i3d features --cluster ray``'s decoding): the data path on a Ray cluster, through
Ray Data (extra ``[ray]``).

Two stages, streamed by Ray Data (nothing of our own schedules, retries or moves data):

- **decode**: Ray tasks on CPUs, one video per task, at most ``--workers`` at once (``TaskPoolStrategy``); each
  returns what a local decode worker writes to shared memory (the distinct sampled frames, uint8, their index
  table and crop offsets) or a recorded failure with its one-line reason. A decode longer than ``--timeout``
  seconds is a failure (``SIGALRM`` in the task's worker). Frames travel through Ray's object store.
- **model**: a fixed pool of actors (``ActorPoolStrategy``), one per GPU (``num_gpus=1`` each; CPU actors on a
  cluster without GPUs), each building the backend once; a call takes one batch of ``--batch-size`` consecutive
  list entries (rows come in list order: ``preserve_order``), gathers the views where the model runs and returns
  only the fused probabilities.

The driver reads the results in list order and appends each batch to the run directory exactly as the local
evaluation does (same lines, same fsync), so ``--resume``, ``i3d merge`` and the outputs are the same code, and the
batches hold the same videos as a local run's: the result equals it (bit for bit on CPU with the same threads; the
actor sets the driver's thread count, since Ray sets ``OMP_NUM_THREADS`` from a task's CPUs).

Faults, with Ray's own settings (none overridden): a decode task whose worker or node died runs again (Ray's
task default ``max_retries=3``, system failures only); a model actor that died is restarted and its call retried
(Ray Data's actor pools: ``max_restarts=-1``, ``max_task_retries=-1``), so a lost node costs the work in flight
(tested by removing a node mid-run). An exception in our code is not retried (a bad video is already a recorded
failure). If the driver dies, the run directory holds the batches written so far and ``--resume`` continues it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..data.datasets import Sample, VideoDataset
from ..data.pipeline import VideoFrames
from ..data.transforms import get_protocol
from ..errors import I3DError, VideoError
from ..model.weights import Weights
from ..runtime import BackendSpec, make_backend
from .decoding import Decoding

INSTALL_HINT = "pip install 'i3d-infer[ray]'"
EMPTY_FRAMES = np.zeros((0, 1, 1, 3), np.uint8)


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray evaluation runs."""

    address: str | None = (
        None  # an existing cluster ("auto", "ray://..."); None: a local instance sized to this machine
    )
    gpus: int | None = None  # model actors, one GPU each (None: every GPU Ray sees; without GPUs: one CPU actor)


@dataclass
class RayBatch:
    """One list batch, done: its samples (failures with their reasons) and the fused scores of the readable ones."""

    samples: list[Sample]
    scores: dict[int, np.ndarray]
    seconds: float  # the model call's wall time in its actor
    nodes: Counter  # decode tasks per node id
    actor: str  # the actor that ran it


def require_ray():
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise I3DError(f"--cluster ray needs Ray Data ({INSTALL_HINT}): {e}") from None
    return ray


@contextlib.contextmanager
def connected(options: RayOptions):
    """A Ray connection for the run: the running one, the cluster at ``address``, or a local instance (shut down
    afterwards)."""
    ray = require_ray()
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its execution notices would break the progress bar
    started = not ray.is_initialized()
    if started:
        if options.address is None:  # our own instance: its workers at the caller's priority, not Ray's nice 15
            os.environ.setdefault("RAY_worker_niceness", "0")
        try:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise I3DError(f"cannot connect to the Ray cluster at {options.address}: {e}") from e
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _deadline(seconds: float | None, what: str):
    """Raise VideoError after ``seconds`` (main thread of a Ray worker only; elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise VideoError(f"{what}: decoding took longer than {seconds:g} s (--timeout)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def decode_row(row: dict, dataset: VideoDataset, timeout: float | None) -> dict:
    """A decode task: one video's distinct sampled frames, or its failure (never an exception for a bad video)."""
    import ray

    index = int(row["index"])
    try:
        with _deadline(timeout, str(dataset.root / dataset.entries[index].video_id)):
            sample = dataset.frames(index, threads=1)  # the task holds one CPU (num_cpus=1)
    except VideoError as e:
        entry = dataset.entries[index]
        sample = Sample(index, entry.video_id, entry.label, None, str(e), decoder=dataset.decoder)
    pre = dataset.preprocessing
    crops = get_protocol(dataset.protocol).num_crops
    video = sample.frames
    return {
        "index": index,
        "batch": int(row["batch"]),
        "size": int(row["size"]),
        "error": sample.error or "",
        "decoder": sample.decoder or "",
        "num_frames": video.num_frames if video else 0,
        "frames": video.frames if video else EMPTY_FRAMES,
        "table": video.table if video else np.zeros((pre.num_clips, pre.clip_len), np.int64),
        "crops": np.array(video.crops if video else [(0, 0)] * crops, np.int64),
        "node": ray.get_runtime_context().get_node_id(),
    }


class ModelActor:
    """Holds the backend once; each call is one list batch of decoded videos in, fused probabilities out."""

    def __init__(self, spec: BackendSpec, weights: Weights, fuse, *, protocol: str, threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)  # Ray set OMP_NUM_THREADS from the actor's CPUs; the driver's count wins
        self.backend = make_backend(spec, weights)
        self.fuse, self.protocol, self.size = fuse, protocol, weights.preprocessing.crop_size
        self.on_gpu = self.backend.input_device is not None
        self.name = f"{os.uname().nodename}:{os.getpid()}"

    def __call__(self, batch: dict) -> dict:
        import time

        indices = batch["index"].tolist()
        if len(set(batch["batch"].tolist())) != 1 or len(indices) != int(batch["size"][0]):
            raise RuntimeError(f"Ray Data formed a model batch across list batches: {indices}")  # never seen; loud
        readable = [k for k, error in enumerate(batch["error"]) if not error]
        scores = np.zeros((len(indices), self.backend.num_classes), np.float64)
        start = time.perf_counter()
        if readable:
            videos = [self._video(batch, k) for k in readable]
            scores[readable] = self.fuse(self._logits(videos), videos[0].num_views)
        seconds = time.perf_counter() - start
        return {
            "index": batch["index"],
            "scores": scores,
            "error": batch["error"],
            "decoder": batch["decoder"],
            "node": batch["node"],
            "seconds": np.full(len(indices), seconds),
            "actor": np.array([self.name] * len(indices)),
        }

    def _video(self, batch: dict, k: int) -> VideoFrames:
        crops = tuple((int(x), int(y)) for x, y in batch["crops"][k])
        frames = np.asarray(batch["frames"][k])
        table = np.asarray(batch["table"][k])
        return VideoFrames("", int(batch["num_frames"][k]), table, self.protocol, frames, table, crops, self.size)

    def _logits(self, videos: list[VideoFrames]) -> np.ndarray:
        """The batch's views gathered where the model runs (the local assemblers' code), then the model."""
        from .batches import gather_batch_host, gather_views

        per_video = videos[0].num_views
        shape = (len(videos) * per_video, 3, videos[0].table.shape[1], self.size, self.size)
        if self.on_gpu:
            import torch

            device = self.backend.torch_device
            views = torch.empty(shape, dtype=torch.uint8, device=device)
            for k, video in enumerate(videos):
                frames = torch.from_numpy(video.frames).to(device)
                gather_views(frames, video, views[k * per_video : (k + 1) * per_video])
            return self.backend.forward(views).cpu().numpy()
        views = np.empty(shape, np.uint8)
        gather_batch_host(videos, views, np.empty(0, np.uint8))
        return self.backend.compute(self.backend.prepare(views))


def ray_batches(
    dataset: VideoDataset,
    batches: list[list[int]],
    spec: BackendSpec,
    *,
    weights: Weights,
    fuse: Callable[[np.ndarray, int], np.ndarray],
    decoding: Decoding,
    threads: int | None,
    options: RayOptions,
) -> Iterator[RayBatch]:
    """Run ``batches`` (lists of list indices) through Ray Data; yields each batch, done, in order.

    Needs a connected Ray (:func:`connected`). ``fuse(logits, views per video)``: the clip fusion, run in the actors
    (only the fused scores leave them); ``decoding.workers``: concurrent decode tasks (each with the timeout);
    ``threads``: the backend's CPU threads in every actor.
    """
    ray = require_ray()
    if not batches:
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # batches keep the local composition; results in list order
    context.enable_progress_bars = False  # the evaluation has its own bar
    gpus = options.gpus if options.gpus is not None else int(ray.cluster_resources().get("GPU", 0))
    # A GPU actor reserves its GPU; a CPU actor reserves nothing, sharing its node's cores with the decode tasks as
    # the local run's model shares the machine with its workers (reserving them would leave decoding none).
    actors, per_actor = (gpus, {"num_gpus": 1, "num_cpus": 0}) if gpus else (1, {"num_cpus": 0})
    rows = [{"index": i, "batch": b, "size": len(batch)} for b, batch in enumerate(batches) for i in batch]
    pipeline = (
        ray.data.from_items(rows, override_num_blocks=len(rows))  # one video per decode task
        .map(
            decode_row,
            fn_kwargs={"dataset": dataset, "timeout": decoding.timeout},
            compute=ray.data.TaskPoolStrategy(size=max(1, decoding.workers)),
            num_cpus=1,
        )
        .map_batches(
            ModelActor,
            fn_constructor_kwargs={
                "spec": spec,
                "weights": weights,
                "fuse": fuse,
                "protocol": dataset.protocol,
                "threads": threads,
            },
            batch_size=max(len(b) for b in batches),
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            **per_actor,
        )
    )
    pending = iter(batches)
    current, done = next(pending), {}
    for row in pipeline.iter_rows():
        done[int(row["index"])] = row
        while current is not None and all(i in done for i in current):
            yield _finished(dataset, [done.pop(i) for i in current])
            current = next(pending, None)


def _finished(dataset: VideoDataset, rows: list[dict]) -> RayBatch:
    samples, scores = [], {}
    for row in rows:
        index = int(row["index"])
        entry = dataset.entries[index]
        error = str(row["error"]) or None
        samples.append(Sample(index, entry.video_id, entry.label, None, error, decoder=str(row["decoder"]) or None))
        if error is None:
            scores[index] = np.asarray(row["scores"], np.float64)
    nodes = Counter(str(row["node"]) for row in rows)
    return RayBatch(samples, scores, float(rows[0]["seconds"]), nodes, str(rows[0]["actor"]))


def ray_streams(read: Callable, tasks: list, *, workers: int, timeout: float | None) -> Iterator:
    """``i3d features --cluster ray``: ``transport.workers.stream_tasks``'s messages with Ray Data's decode tasks in
    place of local processes (needs a connected Ray). One task per video (at most ``workers`` at once, one CPU
    each) runs the generator ``read(task)``; each item goes on as its own row (the video's chunks stream through
    the object store, memory bounded by a chunk, not the video) followed by the task's end or its one-line error
    (``--timeout``: seconds a video may go without an item). Rows arrive in list order (``preserve_order``). A
    decode task whose worker or node died runs again (Ray's ``max_retries``); its rows are Ray Data's blocks, so a
    retried task's items reach the consumer once."""
    from .workers import Streamed

    ray = require_ray()
    if not tasks:
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    rows = [{"index": k} for k in range(len(tasks))]
    pipeline = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        _decode_stream,
        fn_kwargs={"read": read, "tasks": tasks, "timeout": timeout},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.TaskPoolStrategy(size=max(1, workers)),
        num_cpus=1,
    )
    for row in pipeline.iter_rows():
        index = int(row["index"])
        kind, value = pickle.loads(row["message"].tobytes())
        yield Streamed(index, tasks[index], kind, value)


def _decode_stream(batch: dict, *, read: Callable, tasks: list, timeout: float | None) -> Iterator[dict]:
    """A decode task: one video's items as rows (pickled: ``(kind, value)``), then its end or its error."""
    index = int(batch["index"][0])
    task = tasks[index]

    def row(kind: str, value=None) -> dict:
        message = np.frombuffer(pickle.dumps((kind, value), protocol=5), np.uint8)
        return {"index": np.array([index]), "message": message[None]}

    items = iter(read(task))
    try:
        while True:
            with _deadline(timeout, str(getattr(task, "path", task))):
                item = next(items, _END)
            if item is _END:
                break
            yield row("item", item)
    except Exception as e:  # a bad video (or a bug) ends its task with a recorded failure, as a local worker's
        yield row("error", str(e) if isinstance(e, VideoError) else f"{type(e).__name__}: {e}")
        return
    yield row("done")


_END = object()
