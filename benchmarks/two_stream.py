"""Two-stream ``i3d features`` against the RGB-only run, whole processes in turn in one run: wall time, videos/s and
peak RSS of RGB only, RGB + flow with OpenCV's TV-L1 and RGB + flow with the torch TV-L1 (``--flow torch``), the
THUMOS recipe's 16-frame windows every 4 frames, synthetic Inception weights (DeepMind's layout).

    python benchmarks/two_stream.py [--frames 40] [--device cpu] [--batch-size 8] [--flows opencv torch]

``--frames N``: the first N frames of carphone_pristine.mp4 (176x144, resized to 313x256), re-encoded (needs PyAV);
``--frames 0``: the sample videos whole (no PyAV: the GPU image). Prints one JSON record. What limits it: TV-L1
(OpenCV's on the CPU cores; torch's on --device), then the two networks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from i3d_infer.prepare.sample_videos import sample_videos
from inception_reference import random_variables, write_bundle


def run(args: list[str]) -> tuple[float, float]:
    """``i3d`` with ``args`` in a fresh process: (wall seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", "import sys; from i3d_infer.cli import main; sys.exit(main())",
                                *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"i3d {' '.join(args)} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def videos(directory: Path, frames: int) -> list[Path]:
    if not frames:
        return sorted(sample_videos())
    from test_flow import first_frames

    carphone = next(v for v in sample_videos() if v.stem == "carphone_pristine")
    return [first_frames(carphone, directory / "carphone.mp4", frames)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--flows", nargs="+", default=["opencv", "torch"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rgb = write_bundle(tmp / "rgb_imagenet" / "model.ckpt", random_variables(seed=5))
        flow = write_bundle(tmp / "flow_imagenet" / "model.ckpt", random_variables("variables_flow_imagenet", seed=6))
        inputs = [str(v) for v in videos(tmp, args.frames)]
        common = ["features", *inputs, "--checkpoint", str(rgb), "--window", "16", "--stride", "4",
                  "--batch-size", str(args.batch_size), "--device", args.device, "--no-progress"]  # fmt: skip
        runs = {"rgb": run([*common, "--out-dir", str(tmp / "rgb")])}
        for method in args.flows:
            extra = ["--flow-checkpoint", str(flow), "--flow", method, "--out-dir", str(tmp / method)]
            runs[f"rgb+flow ({method})"] = run([*common, *extra])
    base = runs["rgb"][0]
    record = {name: {"seconds": round(s, 2), "videos_per_s": round(len(inputs) / s, 3), "vs_rgb": round(s / base, 2),
                     "peak_rss_mib": round(rss)} for name, (s, rss) in runs.items()}  # fmt: skip
    print(
        json.dumps({"videos": len(inputs), "frames": args.frames or "whole", "device": args.device, **record}, indent=1)
    )


if __name__ == "__main__":
    main()
