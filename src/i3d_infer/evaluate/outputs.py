"""Result files of an evaluation: the seed's ``result.json`` and better ones; merging shard runs.

Files in the run directory: ``result.json`` (seed format: one array of fused scores per listed video, list order;
an unreadable video gets an all-zero array), ``metrics.json``, ``predictions.jsonl``, ``per_class.csv``,
``report.html`` and its figures as PNG (``report.py``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import I3DError
from ..machine import versions
from .metrics import mean_class_accuracy, top_k_accuracy
from .report import write_report
from .results import Accuracy, Counts, Metrics, Timing, VideoResult
from .rundir import CONFIG, RESULTS, EvalConfig

SEED_METRICS = ("top1_acc", "top5_acc", "mean_class_accuracy")


@dataclass(frozen=True)
class RunRecord:
    """What an evaluation produced."""

    out_dir: Path
    metrics: Metrics  # what metrics.json holds
    report: Path | None = None  # report.html

    def summary_lines(self) -> list[str]:
        """The seed's closing lines (all listed videos, unreadable ones counted as wrong), 4 decimals."""
        m, counts = self.metrics.all_videos, self.metrics.counts
        lines = [f"{name}\t{getattr(m, name):.4f}" for name in SEED_METRICS]
        if self.metrics.streams:  # the seed's table: RGB alone, flow alone, the two fused (the lines above)
            lines.append("stream\t" + "\t".join(SEED_METRICS))
            for stream, acc in self.metrics.streams.items():
                lines.append(f"{stream}\t" + "\t".join(f"{getattr(acc, name):.4f}" for name in SEED_METRICS))
        if counts.failed:
            r = self.metrics.readable_videos
            lines.append(
                f"({counts.failed} unreadable videos counted as wrong; over the "
                f"{counts.readable} readable: top1 {r.top1_acc:.4f}, "
                f"top5 {r.top5_acc:.4f}, mean class {r.mean_class_accuracy:.4f})"
            )
        return lines


def accuracy(scores: np.ndarray, labels: np.ndarray, readable: np.ndarray) -> Accuracy:
    """top-1/top-5/mean class accuracy; rows not ``readable`` count as wrong (a prediction of no class)."""
    if not len(labels):
        return Accuracy(0.0, 0.0, 0.0)
    if readable.all():
        top1, top5 = top_k_accuracy(scores, labels, (1, 5))
        return Accuracy(top1, top5, mean_class_accuracy(scores, labels))
    ok = readable.nonzero()[0]
    top1, top5 = top_k_accuracy(scores[ok], labels[ok], (1, 5)) if len(ok) else [0.0, 0.0]
    top1, top5 = top1 * len(ok) / len(labels), top5 * len(ok) / len(labels)
    pred = np.where(readable, np.argmax(scores, axis=1), -1)
    classes = np.unique(np.concatenate([pred[readable], labels]))  # mmaction2's class set, failures add none
    recalls = [
        np.sum((pred == c) & (labels == c)) / max(np.sum(labels == c), 1) if np.any(labels == c) else 0.0
        for c in classes
    ]
    return Accuracy(top1, top5, float(np.mean(recalls)))


def write_outputs(
    out: Path, records: list[VideoResult], labels: list[str], *, config, timing: Timing, complete: bool
) -> RunRecord:
    """Write every result file for ``records`` (list order) and return the run record."""
    num_classes = len(labels)
    readable = np.array([r.readable for r in records], dtype=bool)
    scores = np.array([r.scores if r.readable else [0.0] * num_classes for r in records])
    scores = scores.reshape(len(records), num_classes)
    truth = np.array([r.label for r in records], dtype=np.int64)
    if complete:
        (out / "result.json").write_text(json.dumps(scores.tolist()), encoding="utf-8")
    metrics = Metrics(
        all_videos=accuracy(scores, truth, readable),
        readable_videos=accuracy(scores[readable], truth[readable], readable[readable]),
        counts=Counts(len(records), int(readable.sum()), int((~readable).sum())),
        failures=[{"video": r.video, "reason": r.error} for r in records if not r.readable],
        timing=timing,
        config=dataclasses.asdict(config),
        versions=versions(),
        streams=_stream_accuracy(records, truth, readable, num_classes=num_classes),
    )
    (out / "metrics.json").write_text(json.dumps(metrics.to_json(), indent=1) + "\n", encoding="utf-8")
    _write_predictions(out / "predictions.jsonl", records, scores, labels=labels)
    _write_per_class(out / "per_class.csv", scores, truth, readable=readable, labels=labels)
    return RunRecord(out, metrics, write_report(out, metrics, scores, truth=truth, readable=readable, labels=labels))


def _stream_accuracy(records: list[VideoResult], truth, readable, *, num_classes: int) -> dict | None:
    """Two streams: each stream's accuracy alone and fused (all listed videos, unreadable ones wrong)."""
    if not any(r.streams for r in records):
        return None
    rows = {}
    for name in ("rgb", "flow", "rgb+flow"):
        zero = [0.0] * num_classes
        scores = [zero if not r.readable else r.scores if name == "rgb+flow" else r.streams[name] for r in records]
        rows[name] = accuracy(np.array(scores).reshape(len(records), num_classes), truth, readable)
    return rows


def _write_predictions(path: Path, records: list[VideoResult], scores: np.ndarray, *, labels: list[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record, row in zip(records, scores, strict=True):
            top = np.argsort(row)[::-1][:5].tolist() if record.readable else []
            f.write(
                json.dumps(
                    {
                        "video": record.video,
                        "label": record.label,
                        "label_name": labels[record.label] if 0 <= record.label < len(labels) else None,
                        "top5": [{"index": i, "label": labels[i], "prob": float(row[i])} for i in top],
                        "error": record.error,
                    }
                )
                + "\n"
            )


def _write_per_class(path, scores, truth, *, readable, labels) -> None:
    n = len(labels)
    pred = np.where(readable, np.argmax(scores, axis=1), -1)
    counts = np.bincount(truth, minlength=n)[:n]
    correct = np.bincount(truth[pred == truth], minlength=n)[:n]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["class_index", "class_name", "videos", "correct", "accuracy"])
        for c in range(n):
            writer.writerow(
                [c, labels[c], int(counts[c]), int(correct[c]), f"{correct[c] / counts[c]:.6f}" if counts[c] else ""]
            )


def merge_runs(run_dirs: list[str | Path], out_dir: str | Path, labels: list[str]) -> RunRecord:
    """Combine the shard runs of one configuration into the files a single run would have written.

    Raises:
        I3DError: runs of different configurations, a missing or repeated shard, or missing/duplicated videos.
    """
    configs, records = [], {}
    for run in map(Path, run_dirs):
        if not (run / CONFIG).is_file():
            raise I3DError(f"{run}: not an i3d eval run directory (no {CONFIG})")
        configs.append(json.loads((run / CONFIG).read_text(encoding="utf-8")))
        for line in (run / RESULTS).read_text(encoding="utf-8").splitlines() if (run / RESULTS).is_file() else []:
            try:
                record = VideoResult.from_json(json.loads(line))
            except json.JSONDecodeError:
                break  # a shard killed mid-write: what follows is missing and reported below
            if record.index in records:
                raise I3DError(f"{run}: video {record.video} (list line {record.index + 1}) is in two runs")
            records[record.index] = record
    base = {k: v for k, v in configs[0].items() if k != "shard"}
    for run, config in zip(run_dirs, configs, strict=True):
        if {k: v for k, v in config.items() if k != "shard"} != base:
            raise I3DError(f"{run}: a different configuration from {run_dirs[0]}; cannot merge")
    shards = sorted(tuple(c["shard"]) for c in configs)
    total = shards[0][1]
    if shards != [(i, total) for i in range(total)]:
        raise I3DError(f"shards {shards} do not cover 0..{total - 1} of {total} exactly once")
    list_lines = [line for line in Path(base["list_file"]).read_text(encoding="utf-8").splitlines() if line.split()]
    missing = [i for i in range(len(list_lines)) if i not in records]
    if missing:
        raise I3DError(
            f"{len(missing)} listed videos have no result (first: list line {missing[0] + 1}); "
            "finish the shard runs with --resume"
        )
    config = dataclasses.replace(EvalConfig.from_json(base), shard=(0, 1))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timing = Timing(merged_from=[str(r) for r in run_dirs])
    return write_outputs(
        out, [records[i] for i in range(len(list_lines))], labels, config=config, timing=timing, complete=True
    )
