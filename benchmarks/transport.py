"""The data path on this machine, no model: the decode ceiling, today's transport and the previous one, in turns.

Usage: python benchmarks/transport.py [--videos 24] [--workers 2] [--batch-size 1] [--protocol seed] [--rounds 3]

On a list of N copies of bikes.mp4 (640x272, 250 frames), each round measures, in turn:
  ceiling        --workers processes decoding + resizing each video and sending nothing back
  shared memory  the evaluation's data path: frames into shared-memory slots, batches of views gathered from them
  pipe (before)  the data path before it: each video's views (63 MB in the seed protocol) pickled through a pipe
                 by the same process pool, then concatenated into a batch (what `i3d eval` did until this change)
and prints the medians in videos/s and of each path's share of the ceiling measured in the same round (the
machine's speed drifts; a ratio within a round does not).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from i3d_infer.bench import bench_decode_ceiling, bench_e2e
from i3d_infer.data.datasets import VideoDataset
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.transport.workers import run_tasks


def pipe_transport(dataset: VideoDataset, workers: int, batch_size: int) -> float:
    """videos/s of the previous data path: views through the pool's pipes, one concatenated batch at a time."""
    start = time.perf_counter()
    prefetch = 2 * batch_size + workers
    results = run_tasks(
        dataset.__getitem__, range(len(dataset)), workers, timeout=None, ordered=True, prefetch=prefetch
    )
    group = []
    for result in results:
        group.append(result.value.views.views)
        if len(group) == batch_size:
            np.concatenate(group)
            group = []
    return len(dataset) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--protocol", default="seed")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bikes = next(p for p in sample_videos() if p.stem == "bikes")
    figures: dict[str, list[float]] = {"ceiling": [], "shared memory": [], "pipe (before)": []}
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text(f"{bikes.name} 0\n" * args.videos)
        dataset = VideoDataset(listing, bikes.parent, protocol=args.protocol)
        for _ in range(args.rounds):
            figures["ceiling"].append(bench_decode_ceiling(dataset, args.workers, progress=False).videos_per_s)
            record = bench_e2e(None, dataset, args.batch_size, workers=args.workers, warmup=0, progress=False)
            figures["shared memory"].append(record.videos_per_s)
            figures["pipe (before)"].append(pipe_transport(dataset, args.workers, args.batch_size))
    print(
        f"{args.videos} x bikes.mp4, {args.protocol}, {args.workers} workers, batch {args.batch_size}, "
        f"medians of {args.rounds} rounds; ratios to the ceiling of the same round"
    )
    for name, values in figures.items():
        ratios = [v / c for v, c in zip(values, figures["ceiling"], strict=True)]
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(
            f"{name:<14} {statistics.median(values):7.2f} videos/s ({spread})  "
            f"{statistics.median(ratios):.3f} of the ceiling ({min(ratios):.3f}-{max(ratios):.3f})"
        )


if __name__ == "__main__":
    main()
