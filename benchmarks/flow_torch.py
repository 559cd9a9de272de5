"""The torch TV-L1 (``data.flow_torch``) against OpenCV's CPU TV-L1 on the same frame pairs, in one run: pairs/s
(OpenCV one pair after another, as ``flow_extraction.py``; torch in batches of each ``--batches`` size), the
differences (mean end-point error, max, share of quantised pixels that differ), what the shared stopping rule costs
(the share of pair-iterations spent on pairs that had already stopped), and the flow network's logits on each
flow (synthetic ``flow_imagenet`` weights, seeded).

    python benchmarks/flow_torch.py [--device cuda] [--pairs 16] [--batches 1 16 64] [--short 256]
        [--spread-python /path/to/python-with-opencv-4.10]   # also OpenCV 4.10 vs 5.0 on the same pairs

Frames: bikes.mp4 (640x272) gray, resized to ``--short`` (602x256), consecutive pairs. Prints one JSON record.
What limits it: TV-L1's iterations (up to 5 levels x 5 warps x 300), elementwise work per pixel; on a GPU, kernel
launches at small batches.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from flow_reference import differences, gray_frames, opencv_flow
from i3d_infer.data.flow import scaled
from i3d_infer.data.flow_torch import TVL1Torch
from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.weights import find_weights
from i3d_infer.prepare.sample_videos import sample_videos
from inception_reference import random_variables, write_bundle

SPREAD_SCRIPT = """
import itertools, sys, cv2, numpy as np
frames = np.load(sys.argv[1])
tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
np.save(sys.argv[2], np.stack([tvl1.calc(a, b, None) for a, b in itertools.pairwise(frames)]))
print(cv2.__version__)
"""


def timed_torch(frames: np.ndarray, batch: int, device: str) -> tuple[np.ndarray, float, float]:
    """The flow of every pair of ``frames`` in batches of ``batch`` pairs: (fields, seconds, wasted share)."""
    flow, out = TVL1Torch(device), []
    flow.consecutive(frames[:2])  # warm-up (allocator, kernels)
    flow.iterations.batch = flow.iterations.needed = 0
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    sync()
    start = time.perf_counter()
    for k in range(0, len(frames) - 1, batch):
        out.append(flow.consecutive(frames[k : k + batch + 1]))
    sync()
    seconds = time.perf_counter() - start
    return torch.cat(out).cpu().numpy(), seconds, flow.iterations.wasted


def network_figure(ours: np.ndarray, reference: np.ndarray) -> dict:
    """The flow network's logits on each flow (centre 224, clip ±20 / 20): how far apart, top-1 the same? Synthetic
    weights scaled to keep activations O(1) (the tests'), so the logits depend on the input."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle = write_bundle(Path(tmp) / "model.ckpt", random_variables("variables_flow_imagenet", seed=6))
        network = load_model(bundle, find_weights("flow_imagenet")).network.eval()
    height, width = ours.shape[1:3]
    y, x = (height - 224) // 2, (width - 224) // 2
    logits = []
    for fields in (ours, reference):
        clip = scaled(fields[:, y : y + 224, x : x + 224]).transpose(3, 0, 1, 2)[None]  # (1, 2, T, 224, 224)
        with torch.inference_mode():
            logits.append(network.endpoints(torch.from_numpy(np.ascontiguousarray(clip)))["logits"][0].numpy())
    spread = logits[1].max() - logits[1].min()  # how far apart the classes' logits are
    return {
        "max_abs_logit_difference": float(np.abs(logits[0] - logits[1]).max()),
        "relative_to_the_logits_range": float(np.abs(logits[0] - logits[1]).max() / spread),
        "same_top1": bool(np.argmax(logits[0]) == np.argmax(logits[1])),
        "same_top5": bool(set(np.argsort(logits[0])[-5:]) == set(np.argsort(logits[1])[-5:])),
    }


def spread(frames: np.ndarray, reference: np.ndarray, python: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "frames.npy", frames)
        version = subprocess.run([python, "-c", SPREAD_SCRIPT, f"{tmp}/frames.npy", f"{tmp}/flow.npy"], check=True,
                                 capture_output=True, text=True).stdout.strip()  # fmt: skip
        other = np.load(Path(tmp) / "flow.npy")
    epe, largest, share = differences(other, reference)
    return {"opencv": version, "mean_epe": epe, "max": largest, "quantised_differ": share}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--short", type=int, default=256)
    parser.add_argument("--max-batches", type=int, help="time at most this many batches of each size")
    parser.add_argument("--spread-python", help="a Python with another OpenCV (4.10): its TV-L1 against ours")
    args = parser.parse_args()
    video = next(v for v in sample_videos() if v.stem == "bikes")
    frames = gray_frames(video, args.pairs + 1, args.short)
    start = time.perf_counter()
    reference = opencv_flow(frames)
    opencv_rate = (len(frames) - 1) / (time.perf_counter() - start)
    record = {"device": args.device, "torch_version": torch.__version__, "opencv": cv2.__version__,
              "frames": f"{frames.shape[2]}x{frames.shape[1]}", "pairs": len(frames) - 1,
              "opencv_pairs_per_s": round(opencv_rate, 3), "cv2_threads": cv2.getNumThreads(), "torch": []}  # fmt: skip
    if args.device.startswith("cuda"):
        record["gpu"] = torch.cuda.get_device_name()
    for batch in args.batches:
        pairs = min(len(frames) - 1, batch * args.max_batches) if args.max_batches else len(frames) - 1
        ours, seconds, wasted = timed_torch(frames[: pairs + 1], batch, args.device)
        epe, largest, share = differences(ours, reference[:pairs])
        rate = pairs / seconds
        record["torch"].append({"batch": batch, "pairs": pairs, "pairs_per_s": round(rate, 3),
                                "vs_opencv": round(rate / opencv_rate, 3), "wasted_iterations": round(wasted, 3),
                                "mean_epe": epe, "max": largest, "quantised_differ": share})  # fmt: skip
    record["network"] = network_figure(ours, reference[: len(ours)])
    if args.spread_python:
        record["spread_4_10_vs_5_0"] = spread(frames, reference, args.spread_python)
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
