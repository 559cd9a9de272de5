"""Extraction speed: `i3d extract` vs a bare OpenCV loop on the same input, per worker count, in one run.

Usage: python benchmarks/extract.py [--copies 8] [--workers 1,2]

The input is the sample videos linked --copies times each (bikes 250 f, carphone 120 f, bigbuckbunny 132 f at a
quarter of the copies: 2,000 + 960 + 264 frames with the default). The bare loop is cv2.VideoCapture.read +
cv2.resize(256x256, INTER_LINEAR) + cv2.imwrite(quality 95), the same work with nothing around it, spread over the
same number of processes with multiprocessing.Pool. Figures are frames written per second of wall time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2

from i3d_infer.prepare.extract import extract_all
from i3d_infer.prepare.sample_videos import sample_videos


def bare(task: tuple[str, str]) -> int:
    video, out = task
    os.makedirs(out)
    capture = cv2.VideoCapture(video)
    i = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return i
        i += 1
        frame = cv2.resize(frame, (256, 256), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(f"{out}/img_{i:05d}.jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        for path in sample_videos():
            copies = args.copies // 4 if path.stem == "bigbuckbunny" else args.copies
            for k in range(max(copies, 1)):
                (videos / f"{path.stem}_{k:03d}.mp4").symlink_to(path)
        names = sorted(videos.iterdir())
        print(f"OpenCV {cv2.__version__}, {os.cpu_count()} cores, {len(names)} videos")
        print(f"{'workers':>7} {'bare f/s':>9} {'i3d extract f/s':>16} {'ratio':>6}")
        for workers in (int(w) for w in args.workers.split(",")):
            out = Path(tmp) / f"bare{workers}"
            start = time.perf_counter()
            with mp.get_context("fork").Pool(workers) as pool:
                frames = sum(pool.map(bare, [(str(v), str(out / v.stem)) for v in names], chunksize=1))
            bare_rate = frames / (time.perf_counter() - start)
            out = Path(tmp) / f"ours{workers}"
            start = time.perf_counter()
            report = extract_all(videos, out, workers=workers, progress=False, log=lambda _: None)
            ours_rate = report.frames / (time.perf_counter() - start)
            assert report.frames == frames and not report.failed
            print(f"{workers:>7} {bare_rate:>9.0f} {ours_rate:>16.0f} {ours_rate / bare_rate:>6.2f}", flush=True)
            shutil.rmtree(Path(tmp) / f"bare{workers}")
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
