"""Flow pairs per second of ``i3d extract --task flow`` (decode workers on every core) against mmaction2's
``tools/misc/flow_extraction.py`` way (one process, one video after another, every frame in memory), on copies of a
sample video's first frames, in one run.

    python benchmarks/flow_extract.py [--videos 4] [--frames 40] [--layout mmaction2-cpu]

Prints one JSON record. TV-L1 on the CPU limits both (decoding and JPEG writing are a few % of it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from i3d_infer.prepare.extract import ExtractOptions, extract_all
from i3d_infer.prepare.sample_videos import sample_videos
from test_flow import first_frames, mmaction2_flow_extraction


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--layout", default="mmaction2-cpu")
    args = parser.parse_args()
    source = next(v for v in sample_videos() if "carphone" in str(v))  # 176x144
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "videos"
        root.mkdir()
        first_frames(source, root / "v0.mp4", args.frames)
        for k in range(1, args.videos):
            os.link(root / "v0.mp4", root / f"v{k}.mp4")
        pairs = args.videos * (args.frames - 1)
        started = time.perf_counter()
        for k in range(args.videos):  # the reference tool's way: one process, one video after another
            mmaction2_flow_extraction(root / f"v{k}.mp4", Path(tmp) / "reference" / f"v{k}")
        reference = pairs / (time.perf_counter() - started)
        started = time.perf_counter()
        options = ExtractOptions(task="flow", flow_layout=args.layout)
        report = extract_all(root, Path(tmp) / "ours", options, progress=False, log=lambda line: None)
        ours = pairs / (time.perf_counter() - started)
        assert report.extracted == args.videos, report
    print(json.dumps({"videos": args.videos, "frames": args.frames, "size": "176x144", "layout": args.layout,
                      "cores": os.cpu_count(), "reference_pairs_per_s": round(reference, 2),
                      "extract_pairs_per_s": round(ours, 2), "ratio": round(ours / reference, 2),
                      "opencv": cv2.__version__}))  # fmt: skip


if __name__ == "__main__":
    main()
