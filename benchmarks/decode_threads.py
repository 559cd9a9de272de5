"""The decode workers' FFmpeg threads: their share of the cores (what the evaluation does) against FFmpeg's own
choice (a thread per core in every worker), in turns; and the same share for OpenCV's own threads (``cv2.resize``'s
thread pool, a thread per core in every worker too; set in this process, inherited by the forked workers).

Usage: python benchmarks/decode_threads.py [--videos 48] [--workers N] [--protocol seed] [--rounds 3]

On a list of --videos copies of bikes.mp4 (640x272, 250 frames), each round measures the decode ceiling (--workers
processes decoding + resizing each video's sampled frames, sending nothing back) each way; prints each round and
the medians in videos/s, and the median of the per-round ratios to FFmpeg's choice (the machine's speed drifts; a
ratio within a round does not). Default --workers: the cores less one, as `i3d eval` on a GPU machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import cv2

from i3d_infer.bench import bench_decode_ceiling
from i3d_infer.data.datasets import VideoDataset
from i3d_infer.data.decode import worker_threads
from i3d_infer.machine import usable_cores
from i3d_infer.prepare.sample_videos import sample_videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--workers", type=int, default=max(1, usable_cores() - 1))
    parser.add_argument("--protocol", default="seed")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bikes = next(p for p in sample_videos() if p.stem == "bikes")
    share, cv2_default = worker_threads(args.workers), cv2.getNumThreads()
    ways = {  # name: (FFmpeg threads per worker, OpenCV threads per worker)
        f"{share} thread(s) each": (share, cv2_default),
        "FFmpeg's choice": (0, cv2_default),
        f"{share} + cv2 {share}": (share, share),
    }
    figures: dict[str, list[float]] = {name: [] for name in ways}
    print(f"{usable_cores()} cores, {args.workers} workers, {args.videos} x {bikes.name}, {args.protocol}")
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text(f"{bikes.name} 0\n" * args.videos)
        dataset = VideoDataset(listing, bikes.parent, protocol=args.protocol)
        for round_ in range(args.rounds):
            for name, (threads, cv2_threads) in ways.items():
                cv2.setNumThreads(cv2_threads)
                record = bench_decode_ceiling(dataset, args.workers, progress=False, threads=threads)
                figures[name].append(record.videos_per_s)
            cv2.setNumThreads(cv2_default)
            print(f"round {round_ + 1}: " + ", ".join(f"{name} {f[-1]:.2f}" for name, f in figures.items()))
    theirs = figures["FFmpeg's choice"]
    for name, f in figures.items():
        ratio = statistics.median(a / b for a, b in zip(f, theirs, strict=True))
        print(f"{name:<18} median {statistics.median(f):6.2f} videos/s, {ratio:.3f} of FFmpeg's choice")


if __name__ == "__main__":
    main()
