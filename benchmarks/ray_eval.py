"""`i3d eval` locally and with `--cluster ray` on one machine, same list, backend and workers, in turns.

Usage:
    python benchmarks/ray_eval.py [--videos 8] [--rounds 2] [--workers 2] [--small] [--device cpu]

The list repeats the three sample videos (bigbuckbunny 1280x720, bikes 640x272, carphone 176x144); synthetic
checkpoint (the official one cannot be downloaded here); the torch backend with the driver's thread count in both.
The Ray instance is started once, before the rounds (its start is printed apart), so the rows compare the two
pipelines; each round runs local then Ray, fresh run directories, and prints videos/s and the ratio ray / local.
--small: 2 clips x 8 frames at 64x64 (decode and transport dominate); default: the full 10 x 32 x 256 input.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import ray
import torch

from i3d_infer.evaluate.runner import EvalConfig, RunOptions, evaluate
from i3d_infer.machine import versions
from i3d_infer.model.weights import DEFAULT_WEIGHTS, Preprocessing
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.transport.ray_data import RayOptions

SMALL = replace(DEFAULT_WEIGHTS, preprocessing=Preprocessing(clip_len=8, num_clips=2, size=64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    weights = SMALL if args.small else DEFAULT_WEIGHTS
    machine = versions()
    print(f"{machine.get('gpu', machine['cpu'])}, torch {machine['torch']}, ray {ray.__version__}, ", end="")
    print(f"{torch.get_num_threads()} threads; {args.videos} videos, batch {args.batch_size}, {args.workers} workers")
    start = time.perf_counter()
    os.environ.setdefault("RAY_worker_niceness", "0")  # as i3d's own local instance (Ray's default: nice 15)
    print(f"Ray workers at nice {os.environ['RAY_worker_niceness']}")  # noqa: SIM112 (Ray's own spelling)
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    print(f"ray.init: {time.perf_counter() - start:.1f} s (not in the rows)")
    paths = sample_videos()
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("".join(f"{paths[i % len(paths)]} {i}\n" for i in range(args.videos)))
        config = EvalConfig(str(listing), "/", random_weights=True, batch_size=args.batch_size)
        ratios = []
        for round_ in range(args.rounds):
            rates = {}
            for name, cluster in (("local", None), ("ray", RayOptions())):
                options = RunOptions(device=args.device, workers=args.workers, progress=False, ray=cluster)
                record = evaluate(config, Path(tmp) / f"{name}{round_}", options, weights=weights)
                rates[name] = record.metrics.timing.videos_per_s
            ratios.append(rates["ray"] / rates["local"])
            local, on_ray = rates["local"], rates["ray"]
            print(f"round {round_}: local {local:.3f}, ray {on_ray:.3f} videos/s, ray / local {ratios[-1]:.3f}")
    print(f"median ray / local: {statistics.median(ratios):.3f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
