"""Seconds per video for `i3d predict` on this machine: decode + preprocess, model, total, per protocol.

Usage: python benchmarks/predict.py [--checkpoint CKPT] [--protocols seed,threecrop] [--threads N]

Without --checkpoint a synthetic checkpoint (random values, the official architecture) is used: the timing of the
network does not depend on its weights.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

from i3d_infer import Predictor, read_video
from i3d_infer.prepare.sample_videos import sample_videos


def synthetic_checkpoint(directory: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from mmaction_reference import random_state_dict

    path = directory / "synthetic.pth"
    torch.save({"state_dict": random_state_dict(0), "meta": {}}, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--protocols", default="seed")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or synthetic_checkpoint(Path(tmp))
        predictor = Predictor.create(checkpoint)
    print(
        f"torch {torch.__version__}, OpenCV {cv2.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'video':<24} {'protocol':<10} {'views':>5} {'decode s':>9} {'model s':>8} {'total s':>8} {'s/clip':>7}")
    for protocol in args.protocols.split(","):
        for path in sample_videos():
            start = time.perf_counter()
            views = read_video(path, protocol)
            decoded = time.perf_counter()
            predictor.backend(views.views)
            done = time.perf_counter()
            n = views.views.shape[0]
            print(
                f"{path.name:<24} {protocol:<10} {n:>5} {decoded - start:>9.2f} {done - decoded:>8.2f} "
                f"{done - start:>8.2f} {(done - decoded) / n:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
