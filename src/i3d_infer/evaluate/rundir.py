"""The run directory of ``i3d eval``: its configuration, its results file and what resuming keeps of it.

``config.json`` holds the :class:`EvalConfig` identity (a run directory refuses another configuration);
``results.jsonl`` holds one line per video, appended a whole batch at a time and fsynced, so a killed run leaves
whole batches plus at most one torn line, which :func:`load_results` drops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..data.decode import DEFAULT_DECODER
from ..errors import I3DError
from ..model.weights import Preprocessing
from ..runtime import BackendSpec
from .results import VideoResult

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
    flow_checkpoint: str | None = None  # two streams: the flow network (torch), beside an Inception RGB one
    flow: str | None = None  # two streams: the TV-L1 implementation (data.flow.IMPLEMENTATIONS; None: opencv)
    model: str | None = None  # onnxruntime / openvino: the exported .onnx file
    random_weights: bool = False  # torch without a checkpoint: seeded random weights (the demo's fallback)
    engine: str | None = None  # torch: "eager" | "fast" | None (fast)
    precision: str = "fp32"  # torch: fp32 | tf32 | fp16 | bf16
    protocol: str = "seed"
    preprocessing: Preprocessing | None = None  # clips, sampling, size, mean/std; None: the weights' own
    fusion: str = "prob"
    batch_size: int = 1  # videos per model call; also the unit of sharding and resuming
    decoder: str = DEFAULT_DECODER  # opencv | pyav (CPU) | nvdec | nvjpeg (GPU)
    cpu_share: float = 0.0  # GPU decoders: the fraction of the list the CPU workers decode (a fixed assignment)
    label_map: str | None = None
    shard: tuple[int, int] = (0, 1)  # (I, N): this process evaluates batches I, I+N, I+2N, ...

    def backend_spec(self, options) -> BackendSpec:
        """The backend this configuration runs, where ``options`` (a ``RunOptions``) place it."""
        return BackendSpec(
            backend=self.backend,
            checkpoint=self.checkpoint,
            model=self.model,
            device=options.device,
            threads=options.threads,
            random_weights=self.random_weights,
            engine=self.engine,
            precision=self.precision,
        )

    @classmethod
    def from_json(cls, fields: dict) -> EvalConfig:
        """The configuration a ``config.json`` (or ``metrics.json``'s ``config``) holds."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in fields.items() if k in known}
        if values.get("preprocessing") is not None:
            pre = {k: tuple(v) if isinstance(v, list) else v for k, v in values["preprocessing"].items()}
            values["preprocessing"] = Preprocessing(**pre)
        if "shard" in values:
            values["shard"] = tuple(values["shard"])
        return cls(**values)

    def identity(self) -> dict:
        """The fields a resumed run must share (device, workers, threads and strictness may change)."""
        fields = dataclasses.asdict(self)
        fields["list_sha256"] = hashlib.sha256(Path(self.list_file).read_bytes()).hexdigest()
        return fields


def batches_of(count: int, batch_size: int, shard: tuple[int, int]) -> list[list[int]]:
    """The list indices of each batch this shard evaluates, in order."""
    index, total = shard
    all_batches = [list(range(s, min(s + batch_size, count))) for s in range(0, count, batch_size)]
    return all_batches[index::total]


def load_results(path: Path, batches: list[list[int]]) -> dict[int, VideoResult]:
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
            records[record["index"]] = VideoResult.from_json(record)
            good_bytes += len(line)
    complete = {i: records[i] for batch in batches if all(j in records for j in batch) for i in batch}
    if len(complete) != len(records) or good_bytes != path.stat().st_size:
        kept = [complete[i].line() for batch in batches for i in batch if i in complete]
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
