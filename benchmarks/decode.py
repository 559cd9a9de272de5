"""Decoder comparison on the real sample videos: frames/s of PyAV and OpenCV, as used by the pipeline and bare.

Usage: python benchmarks/decode.py [--repeats 5] [--threads 0]

For each sample video it prints, per decoder:
  bare      every frame decoded and converted to RGB (a plain loop, the ceiling for any reader)
  pipeline  i3d_infer.read_video(protocol) end to end (decode once, convert + resize only sampled frames, crop)
Figures are frames of the source video per second of wall time (best of --repeats), one process.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import cv2

from i3d_infer.data.pipeline import read_video
from i3d_infer.prepare.sample_videos import sample_videos


def bare_opencv(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return n
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1


def bare_pyav(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24") is not None)


def best_rate(fn, frames: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return frames / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--protocols", default="seed,threecrop")
    args = parser.parse_args()
    protocols = args.protocols.split(",")
    print(f"PyAV {av.__version__}, OpenCV {cv2.__version__}; frames/s, best of {args.repeats}")
    header = f"{'video':<26} {'decoder':<7} {'bare':>8} " + " ".join(f"{p:>11}" for p in protocols)
    print(header)
    for path in sample_videos():
        frames = bare_opencv(path)
        name = f"{path.name} ({frames}f)"
        for decoder, bare in (("pyav", bare_pyav), ("opencv", bare_opencv)):
            row = [best_rate(lambda: bare(path), frames, args.repeats)]  # noqa: B023
            for protocol in protocols:
                run = lambda: read_video(path, protocol, decoder=decoder)  # noqa: B023, E731
                row.append(best_rate(run, frames, args.repeats))
            print(f"{name:<26} {decoder:<7} " + " ".join(f"{r:>{8 if i == 0 else 11}.0f}" for i, r in enumerate(row)))


if __name__ == "__main__":
    main()
