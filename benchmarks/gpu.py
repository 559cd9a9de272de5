"""GPU check and benchmark of the torch engines, in one command (also runs on CPU with small shapes).

Usage (GPU machine):  python benchmarks/gpu.py [--json gpu.json]
Usage (CPU smoke):    python benchmarks/gpu.py --device cpu --shape 2 3 8 64 64 --batch-sizes 1 --iters 1 --warmup 0

1. Correctness, on the real sample videos and on random input, against the eager fp32 model (true fp32: TF32 off):
   fast fp32 relative error (must be <= 1e-5), and for tf32 / fp16 / bf16 the relative error of the logits and
   the top-1 agreement per clip and per video.
2. Speed: eager fp32, eager tf32 (torch's default on GPUs) and the fast engine in every precision, for each batch
   size, on random uint8 input: videos/s, ms per call, peak GPU memory, speed-up over eager fp32 at that batch.

The weights are a synthetic mmaction2 checkpoint (random values everywhere, BN statistics and non-local output
BN included) unless --checkpoint is given: speed does not depend on them, and errors are measured on both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from i3d_infer.bench import bench_inference, versions
from i3d_infer.data.pipeline import read_video
from i3d_infer.data.samples import sample_videos
from i3d_infer.evaluate.metrics import fuse_clips
from i3d_infer.model.checkpoint import build_model, convert_state_dict, load_model
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.runtime.torch_backend import TorchBackend

RUNS = [("eager", "fp32"), ("eager", "tf32"), ("fast", "fp32"), ("fast", "tf32"), ("fast", "fp16"), ("fast", "bf16")]


def recognizer(checkpoint: str | None):
    if checkpoint:
        return load_model(checkpoint)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from mmaction_reference import random_state_dict

    model = build_model(DEFAULT_WEIGHTS.architecture())
    model.network.load_state_dict(convert_state_dict(random_state_dict(0), model.network), strict=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--shape", type=int, nargs=5, default=[10, 3, 32, 256, 256], metavar=("V", "C", "T", "H", "W"))
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    started = time.perf_counter()
    model = recognizer(args.checkpoint)
    v, _, t, size, _ = args.shape
    pre = replace(DEFAULT_WEIGHTS.preprocessing, num_clips=v, clip_len=t, size=size)
    info = versions()
    print(json.dumps({k: info[k] for k in info if k in ("torch", "cuda", "cudnn", "gpu", "cpu")}))

    # 1. correctness
    real = [read_video(p, "seed", pre).views for p in sample_videos()]
    noise = [np.random.default_rng(i).integers(1, 256, tuple(args.shape), np.uint8) for i in range(2)]
    reference = TorchBackend(model, args.device, engine="eager", precision="fp32")
    expected = {name: [reference(x) for x in xs] for name, xs in (("sample videos", real), ("random", noise))}
    checks = []
    print(f"{'engine':<6} {'precision':<9} {'input':<14} {'max rel err':>11} {'clip top1':>9} {'video top1':>10}")
    for engine, precision in RUNS[2:]:
        backend = TorchBackend(model, args.device, engine=engine, precision=precision, cuda_graphs=False)
        for name, xs in (("sample videos", real), ("random", noise)):
            got = [backend(x) for x in xs]
            ref = expected[name]
            rel = max(float(np.abs(g - r).max() / np.abs(r).max()) for g, r in zip(got, ref, strict=True))
            clip = float(np.mean(np.concatenate([g.argmax(1) == r.argmax(1) for g, r in zip(got, ref, strict=True)])))
            video = float(
                np.mean([fuse_clips(g, v).argmax() == fuse_clips(r, v).argmax() for g, r in zip(got, ref, strict=True)])
            )
            checks.append(
                {
                    "engine": engine,
                    "precision": precision,
                    "input": name,
                    "max_rel": rel,
                    "clip_top1_agreement": clip,
                    "video_top1_agreement": video,
                }
            )
            print(f"{engine:<6} {precision:<9} {name:<14} {rel:>11.2e} {clip:>9.4f} {video:>10.4f}", flush=True)
    fast_fp32 = max(c["max_rel"] for c in checks if c["precision"] == "fp32")
    print(f"fast fp32 vs eager fp32: {fast_fp32:.2e} ({'OK' if fast_fp32 <= 1e-5 else 'FAILED'}: tolerance 1e-5)")
    del reference

    # 2. speed
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(
        f"{'engine':<6} {'precision':<9} {'B':>3} {'videos/s':>9} {'mean ms':>9} {'peak MiB':>9} {'vs eager fp32':>13}"
    )
    records, baseline = [], {}
    for engine, precision in RUNS:
        backend = TorchBackend(model, args.device, engine=engine, precision=precision)
        for batch in batch_sizes:
            r = bench_inference(backend, batch, tuple(args.shape), args.warmup, args.iters, progress=False)
            baseline.setdefault(batch, r.videos_per_s)
            speedup = r.videos_per_s / baseline[batch]
            peak = f"{r.peak_gpu_mib:9.0f}" if r.peak_gpu_mib is not None else f"{'-':>9}"
            print(
                f"{engine:<6} {precision:<9} {batch:>3} {r.videos_per_s:>9.2f} {r.mean_ms:>9.1f} {peak} "
                f"{speedup:>12.2f}x",
                flush=True,
            )
            records.append({**asdict(r), "engine": engine, "precision": precision, "speedup_vs_eager_fp32": speedup})
        del backend
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"checks": checks, "bench": records, "versions": info}, indent=1))


if __name__ == "__main__":
    main()
