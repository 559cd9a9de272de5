"""Inception I3D RGB features on this machine: ``i3d features``' pipeline (decode workers streaming windows, batches
across windows) against a one-window-at-a-time loop of the same network (what pytorch-i3d and video_features do:
read the video, then one stack per call), in one process, as clips/s and their ratio.

    python benchmarks/inception_features.py [--window 16] [--stride 16] [--batch-size 8] [--workers 1] [--repeats 2]
        [--device cuda --precision fp16]

Synthetic weights (random, DeepMind's layout); the videos are the bundled samples. Prints one JSON record.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from i3d_infer.data.pipeline import read_video
from i3d_infer.data.sampling import windows
from i3d_infer.features.plan import FeaturePlan, plan_outputs
from i3d_infer.features.run import FeatureJob, extract_features
from i3d_infer.machine import versions
from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.weights import find_weights
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.runtime.torch_backend import TorchBackend
from inception_reference import random_variables, write_bundle


def one_at_a_time(recognizer, videos, weights, args) -> int:
    """Read each whole video, then run the eager fp32 network on one window per call; returns the windows run."""
    clips, window = 0, args.window
    recognizer = recognizer.to(args.device)
    for video in videos:
        frames = read_video(video, "centercrop", weights.preprocessing).views  # (1, 3, T, 224, 224) uint8
        for start in range(0, frames.shape[2] - window + 1, args.stride):
            with torch.inference_mode():
                recognizer(torch.from_numpy(frames[:, :, start : start + window]).to(args.device)).cpu()
            clips += 1
    return clips


def pipeline(recognizer, videos, weights, args, out: Path) -> int:
    window, stride, batch, workers = args.window, args.stride, args.batch_size, args.workers
    plan = FeaturePlan(dense=windows(window, stride), protocol="centercrop", batch_size=batch)
    job = FeatureJob(plan, weights, out, workers=workers)
    tasks = plan_outputs([(v, Path(v).stem) for v in videos], out)
    backend = TorchBackend(recognizer, args.device, engine=args.engine, precision=args.precision)
    return extract_features(job, tasks, backend).clips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="decode processes of the pipeline (0: in process)")
    parser.add_argument("--engine", default="fast", help="the pipeline's torch engine (the loop: eager network)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="the pipeline's (the loop: fp32)")
    args = parser.parse_args()
    weights = find_weights("rgb_imagenet")
    videos = [str(v) for v in sample_videos() if "bigbuckbunny" not in str(v)]  # carphone, bikes: 370 frames
    with tempfile.TemporaryDirectory() as tmp:
        bundle = write_bundle(Path(tmp) / "rgb_imagenet" / "model.ckpt", random_variables(seed=0))
        recognizer = load_model(bundle, weights).features_only()
        figures = {"loop": [], "pipeline": []}
        for k in range(args.repeats):  # in turns, so both see the same machine state
            started = time.perf_counter()
            clips = one_at_a_time(recognizer, videos, weights, args)
            figures["loop"].append(clips / (time.perf_counter() - started))
            started = time.perf_counter()
            out = Path(tmp) / f"o{k}"
            n = pipeline(recognizer, videos, weights, args, out)
            figures["pipeline"].append(n / (time.perf_counter() - started))
            assert n == clips, (n, clips)
    loop, ours = float(np.median(figures["loop"])), float(np.median(figures["pipeline"]))
    record = {"window": args.window, "stride": args.stride, "batch": args.batch_size, "workers": args.workers,
              "engine": args.engine, "device": args.device, "precision": args.precision,
              "clips": clips,
              "loop_clips_per_s": round(loop, 3), "features_clips_per_s": round(ours, 3),
              "ratio": round(ours / loop, 3), "threads": torch.get_num_threads(), "versions": versions()}  # fmt: skip
    print(json.dumps(record))


if __name__ == "__main__":
    main()
