"""What an extraction writes: one ``.npy`` per video (atomically), ``index.jsonl`` (a line per video: its frames,
clips and decoder), ``failures.jsonl`` (one-line reasons) and ``features.json`` (what the files hold).

A killed run leaves no partial ``.npy`` (each is written to a temporary name, then renamed), so ``--resume``
extracts exactly the videos without one; lines of videos done twice are kept once when the run ends.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..machine import versions


def save_atomically(path: Path, array: np.ndarray) -> None:
    """``np.save`` to ``path`` through a temporary file in the same directory, renamed once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


class JsonLines:
    """A ``.jsonl`` file appended a line at a time (flushed: a kill loses no finished line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self, keep=None, *, also: tuple[Path, ...] = ()) -> None:
        """Close; with ``keep(record) -> key | None``, rewrite the file with the last line of each key kept (in
        first-seen order) and the lines whose key is None dropped; the lines of the files ``also`` (e.g. a sharded
        run's parts) come first."""
        self.file.close()
        if keep is None or not self.path.exists():
            return
        records: dict = {}
        lines = [line for path in also for line in path.read_text(encoding="utf-8").splitlines()]
        for line in [*lines, *self.path.read_text(encoding="utf-8").splitlines()]:
            record = json.loads(line)
            key = keep(record)
            if key is not None:
                records[key] = record
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text("".join(json.dumps(r) + "\n" for r in records.values()), encoding="utf-8")
        os.replace(partial, self.path)


def video_record(task, end, clips: dict, *, shape: tuple[int, ...], out_dir: Path) -> dict:
    """A video's ``index.jsonl`` line: where it came from, its frames, its clips (first, centre and last frame, and
    those frames' timestamps in seconds), which decoder read it, and its file."""
    return {
        "video": task.name,
        "features": str(task.out.relative_to(out_dir)),
        "shape": list(shape),
        "num_frames": end.num_frames,
        "fps": end.fps,
        "num_clips": len(clips["centre"]),
        "clips": clips,
        "decoder": end.decoder,
    }


def describe(plan, *, checkpoint, weights, backend, dim: int) -> dict:
    """``features.json``: enough for whoever reads the files to know what they hold."""
    return {
        "model": weights.name,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "checkpoint_sha256": sha256(checkpoint) if checkpoint and Path(checkpoint).is_file() else None,
        "backend": getattr(backend, "label", getattr(backend, "name", "")),
        "feature": weights.feature_description(dim),
        "clips": _clips(plan, weights),
        "fps": plan.fps,  # frames resampled to this rate first (None: as decoded)
        "streams": plan.streams,  # rgb+flow: RGB features first, then flow (window k: frames and fields [kS, kS+L))
        "flow": None if plan.flow is None else plan.flow.describe(),
        "protocol": plan.protocol,
        "views": plan.views if plan.crops > 1 else "one",
        "shape": "(clips, crops, dim)" if len(plan.feature_shape(1, dim)) == 3 else "(clips, dim)",
        "dtype": plan.dtype,
        "scores": "<name>.scores.npy: (clips, classes), each clip's class probabilities" if plan.scores else None,
        "size": weights.preprocessing.size,
        "crop": weights.preprocessing.crop_size,
        "versions": versions(),
    }


def _clips(plan, weights) -> dict:
    if plan.clips == "dense" and plan.dense.first_centre is not None:
        d = plan.dense
        return {"placement": "windows: frames [k*stride, k*stride + window)", "window": d.clip_len,
                "stride": d.clip_interval, "tail": "pad" if d.clamp_tail else "drop"}  # fmt: skip
    if plan.clips == "dense":
        d = plan.dense
        return {"placement": "UntrimmedSampleFrames", "clip_len": d.clip_len, "clip_interval": d.clip_interval,
                "frame_interval": d.frame_interval}  # fmt: skip
    pre = weights.preprocessing
    return {"placement": "test (SampleFrames test_mode)", "clip_len": pre.clip_len, "num_clips": pre.num_clips,
            "frame_interval": pre.frame_interval, "sampling": pre.sampling,
            "mean": "<name>.mean.npy: the mean over the clips"}  # fmt: skip


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
