"""Peak memory of the two-stream features' data path (``i3d features --flow-checkpoint``: decode -> TV-L1 ->
16-frame windows every 4, streamed) on a 30,000-frame video against a 300-frame one, each in a fresh process.

    python benchmarks/flow_memory.py [--frames 300 30000] [--size 64x48]

The decode worker's own stage (``features.run.read_clips``, real TV-L1 and real windows) runs over the whole video;
the frames are small (64x48, network input 48x48) so that 30,000 TV-L1 pairs take minutes, not the hours they take
at 256p (the network is left out: its memory does not depend on the video's length). Prints one JSON record: peak
RSS per length, windows, pairs/s. What limits it: TV-L1 (one core).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from i3d_infer.data.sampling import windows
from i3d_infer.data.streaming import ClipChunk
from i3d_infer.features.plan import FeaturePlan, FeatureTask
from i3d_infer.features.run import FeatureJob, read_clips
from i3d_infer.model.weights import find_weights


def write_video(path: Path, frames: int, width: int, height: int) -> None:
    """A moving texture (so TV-L1 has motion to find), MPEG-4 part 2."""
    texture = np.random.default_rng(0).integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            x, y = t % width, (t // 2) % height
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[y : y + height, x : x + width]), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def child(path: str, short: int) -> None:
    """Run the decode worker's stage over the video; print its windows, seconds and peak RSS."""
    weights = find_weights("rgb_imagenet")
    pre = dataclasses.replace(weights.preprocessing, size=short, crop=short, min_frames=1)
    plan = FeaturePlan(dense=windows(16, 4), streams="rgb+flow")
    job = FeatureJob(plan, dataclasses.replace(weights, preprocessing=pre), Path("."), workers=0)
    started, clips = time.perf_counter(), 0
    for item in read_clips(FeatureTask(0, Path(path), "v", None), job=job):
        clips += len(item.table) if isinstance(item, ClipChunk) else 0
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    print(json.dumps({"windows": clips, "seconds": seconds, "peak_rss_mib": peak}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 30000])
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]))
    width, height = map(int, args.size.split("x"))
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for frames in args.frames:
            path = Path(tmp) / f"v{frames}.mp4"
            write_video(path, frames, width, height)
            out = subprocess.run([sys.executable, __file__, "--child", str(path), str(min(width, height))],
                                 check=True, capture_output=True, text=True).stdout  # fmt: skip
            run = json.loads(out)
            runs[frames] = {**run, "pairs_per_s": round((frames - 1) / run["seconds"], 1)}
    print(json.dumps({"size": args.size, "window": 16, "stride": 4, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
