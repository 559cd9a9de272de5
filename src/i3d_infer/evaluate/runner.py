"""``i3d eval``: a pipelined, resumable, shardable evaluation over a list file.

Decode workers run ahead of the model through a bounded pool; batches of ``batch_size`` consecutive list entries
are the unit of work, of sharding (shard I of N takes batches I, I+N, ...) and of durability (each batch's results
are appended to ``results.jsonl`` in one write and fsynced). Because a batch always holds the same videos, a resumed
or sharded run feeds the model exactly what an uninterrupted single run does, so ``result.json`` comes out bit for
bit the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.datasets import Sample, VideoDataset
from ..data.decode import DEFAULT_DECODER
from ..data.workers import run_tasks
from ..errors import I3DError
from ..model.weights import DEFAULT_WEIGHTS, Weights, read_labels
from ..runtime import make_backend
from .metrics import fuse_clips
from .outputs import RunRecord, write_outputs

RESULTS = "results.jsonl"
CONFIG = "config.json"


@dataclass(frozen=True)
class EvalConfig:
    """Everything that decides an evaluation's results; a run directory remembers it to refuse mixing runs."""

    list_file: str  # list file (absolute path)
    root: str  # directory the list's paths are relative to
    list_format: str | None = None  # "rawframes" | "videos" | None (guessed from the list)
    backend: str = "torch"
    checkpoint: str | None = None  # torch: path or URL; None: the official checkpoint
    model: str | None = None  # onnxruntime / openvino: the exported .onnx file
    random_weights: bool = False  # torch without a checkpoint: seeded random weights (the demo's fallback)
    engine: str | None = None  # torch: "eager" | "fast" | None (fast)
    precision: str = "fp32"  # torch: fp32 | tf32 | fp16 | bf16
    protocol: str = "seed"
    fusion: str = "prob"
    batch_size: int = 1  # videos per model call; also the unit of sharding and resuming
    decoder: str = DEFAULT_DECODER
    label_map: str | None = None
    shard: tuple[int, int] = (0, 1)  # (I, N): this process evaluates batches I, I+N, I+2N, ...

    def identity(self) -> dict:
        """The fields a resumed run must share (device, workers, threads and strictness may change)."""
        fields = dataclasses.asdict(self)
        fields["list_sha256"] = hashlib.sha256(Path(self.list_file).read_bytes()).hexdigest()
        return fields


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; free to change between a run and its resumption."""

    device: str = "cpu"
    threads: int | None = None
    workers: int = 1  # decode processes; 0 decodes in the main process
    timeout: float = 600.0  # seconds a video's decoding may take
    strict: bool = False  # stop at the first unreadable video
    progress: bool = True


def batches_of(count: int, batch_size: int, shard: tuple[int, int]) -> list[list[int]]:
    """The list indices of each batch this shard evaluates, in order."""
    index, total = shard
    all_batches = [list(range(s, min(s + batch_size, count))) for s in range(0, count, batch_size)]
    return all_batches[index::total]


def load_results(path: Path, batches: list[list[int]]) -> dict[int, dict]:
    """Records of ``results.jsonl`` by list index, whole batches only; a cut-off tail is dropped from the file."""
    if not path.is_file():
        return {}
    records, good_bytes = {}, 0
    with path.open("rb") as f:
        for line in f:
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break  # the run was killed while writing this line
            if not line.endswith(b"\n"):
                break
            records[record["index"]] = record
            good_bytes += len(line)
    complete = {i: records[i] for batch in batches if all(j in records for j in batch) for i in batch}
    if len(complete) != len(records) or good_bytes != path.stat().st_size:
        kept = [json.dumps(complete[i]) + "\n" for batch in batches for i in batch if i in complete]
        _atomic_write(path, "".join(kept))
    return complete


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prepare_run_dir(out_dir: Path, config: EvalConfig, resume: bool) -> None:
    """Create or check ``out_dir``: a directory from another configuration, or one with results and no
    ``--resume``, is refused."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = out_dir / CONFIG
    identity = json.loads(json.dumps(config.identity()))  # as it reads back from the file (tuples as lists)
    if saved.is_file():
        previous = json.loads(saved.read_text(encoding="utf-8"))
        differs = sorted(k for k in identity.keys() | previous.keys() if identity.get(k) != previous.get(k))
        if differs:
            raise I3DError(
                f"{out_dir}: holds a run with a different configuration ({', '.join(differs)} differ); "
                "use another --out-dir"
            )
        if not resume and (out_dir / RESULTS).is_file():
            raise I3DError(f"{out_dir}: holds results of this configuration; pass --resume to continue it")
    else:
        _atomic_write(saved, json.dumps(identity, indent=1) + "\n")


def evaluate(
    config: EvalConfig,
    out_dir: str | os.PathLike,
    options: RunOptions = RunOptions(),
    resume: bool = False,
    weights: Weights = DEFAULT_WEIGHTS,
) -> RunRecord:
    """Evaluate ``config`` into ``out_dir`` (see the module docstring); returns the run's record with its metrics.

    Raises:
        I3DError: a bad list, model or run directory; with ``options.strict``, the first unreadable video.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    dataset = VideoDataset(
        config.list_file, config.root, config.list_format, config.protocol, weights.preprocessing, config.decoder
    )
    config = dataclasses.replace(config, list_format=dataset.list_format)
    labels = read_labels(config.label_map, weights)
    prepare_run_dir(out, config, resume)
    batches = batches_of(len(dataset), config.batch_size, config.shard)
    done = load_results(out / RESULTS, batches)
    todo = [batch for batch in batches if batch[0] not in done]
    backend = make_backend(
        config.backend,
        config.checkpoint,
        config.model,
        options.device,
        options.threads,
        weights,
        config.random_weights,
        config.engine,
        config.precision,
    )
    if backend.num_classes != len(labels):
        raise I3DError(f"the label map has {len(labels)} names but the model has {backend.num_classes} classes")

    indices = [i for batch in todo for i in batch]
    prefetch = 2 * config.batch_size + options.workers
    if options.workers > 0:  # forked workers inherit the dataset; only indices and samples cross the pipe
        results = run_tasks(dataset.__getitem__, indices, options.workers, options.timeout, True, prefetch)
        samples = (_as_sample(r, dataset) for r in results)
    else:
        samples = (dataset[i] for i in indices)

    total = sum(len(b) for b in batches)
    hits = sum(1 for r in done.values() if r["scores"] and int(np.argmax(r["scores"])) == r["label"])
    labels_of = {i: dataset.entries[i].label for i in indices}
    failures = sum(1 for r in done.values() if r["scores"] is None)
    started, model_seconds, new_videos = time.perf_counter(), 0.0, 0
    bar = tqdm(total=total, initial=len(done), unit="video", disable=not options.progress, dynamic_ncols=True)
    with (out / RESULTS).open("a", encoding="utf-8") as sink:
        for batch in todo:
            group = [next(samples) for _ in batch]
            failed = [s for s in group if s.views is None]
            if failed and options.strict:
                raise I3DError(f"{failed[0].error} (--strict)")
            readable = [s for s in group if s.views is not None]
            scores = {}
            if readable:
                views = np.concatenate([s.views.views for s in readable])  # (B·V, 3, T, H, W) uint8
                t0 = time.perf_counter()
                logits = backend(views)  # -> (B·V, classes)
                model_seconds += time.perf_counter() - t0
                fused = fuse_clips(logits, readable[0].views.views.shape[0], config.fusion)  # -> (B, classes)
                scores = {s.index: fused[k] for k, s in enumerate(readable)}
            sink.write("".join(_result_line(s, scores.get(s.index)) for s in group))
            sink.flush()
            os.fsync(sink.fileno())
            new_videos += len(group)
            failures += len(failed)
            hits += sum(int(np.argmax(score)) == labels_of[i] for i, score in scores.items())
            bar.update(len(group))
            rate = new_videos / (time.perf_counter() - started)
            top1 = hits / (len(done) + new_videos)
            bar.set_postfix(videos_per_s=f"{rate:.3g}", top1=f"{top1:.4f}", failed=failures)
    bar.close()
    wall = time.perf_counter() - started
    records = load_results(out / RESULTS, batches)
    timing = {
        "wall_seconds": wall,
        "model_seconds": model_seconds,
        "videos_this_session": new_videos,
        "videos_per_s": new_videos / wall if wall and new_videos else None,
    }
    return write_outputs(
        out, [records[i] for batch in batches for i in batch], labels, config, timing, complete=config.shard[1] == 1
    )


def _result_line(sample: Sample, score: np.ndarray | None) -> str:
    """One line of ``results.jsonl``: the video's fused scores (exact float repr) or why it failed."""
    scores = None if score is None else score.tolist()
    record = {"index": sample.index, "video": sample.video_id, "label": sample.label, "scores": scores}
    return json.dumps({**record, "error": sample.error}) + "\n"


def _as_sample(result, dataset: VideoDataset) -> Sample:
    """A pool result as a Sample: a timed-out or crashed decode becomes a sample error."""
    if result.error is None:
        return result.value
    index = result.task
    entry = dataset.entries[index]
    return Sample(index, entry.video_id, entry.label, None, f"{dataset.root / entry.video_id}: {result.error}")
