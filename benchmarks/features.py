"""``i3d features``: its speed against the model alone, and its memory against the video's length.

Usage:
    python benchmarks/features.py speed [--videos 3] [--batch-size 1] [--workers 1] [--device cpu] [--small]
        [--decoder nvdec --compare-with opencv]
    python benchmarks/features.py memory [--frames 300 30000] [--size 320x240]
    python benchmarks/features.py transport [--videos 6] [--workers 2] [--repeats 3]

speed: clips/s of ``extract_features`` (decode workers + views + batches + backend + files) over the sample videos
against the same backend alone on random uint8 views at the same batch size (``bench_inference``), and their ratio:
how much of the model's rate the whole extraction keeps (1.0: decoding entirely hidden behind the model).

memory: a generated video of each length (H.264 at --size, the sample video's frames looped), extracted in a fresh
process each, full preprocessing (32-frame clips at 256 px, a clip every 16 frames) but a stand-in model that
returns zeros at once, so the figures are the data path's: peak RSS of the main process and of the decode worker,
and the most decoded frames held at once. The real model adds its own fixed memory on top.

transport: the data path alone (the stand-in model) through shared-memory slots against the pipe, each a fresh
process, in turns, medians: what the slots save (decode limits both).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from i3d_infer.bench import bench_inference
from i3d_infer.data.sampling import DenseClips
from i3d_infer.features.plan import FeaturePlan, plan_outputs
from i3d_infer.features.run import FeatureJob, extract_features
from i3d_infer.model.weights import DEFAULT_WEIGHTS, Preprocessing
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.runtime import BackendSpec, make_backend

SMALL = replace(DEFAULT_WEIGHTS, preprocessing=Preprocessing(clip_len=8, num_clips=2, size=64))


def speed(args) -> dict:
    weights = SMALL if args.small else DEFAULT_WEIGHTS
    pre = weights.preprocessing
    spec = BackendSpec(device=args.device, random_weights=True, features=True, precision=args.precision)
    backend = make_backend(spec, weights)
    with tempfile.TemporaryDirectory() as tmp:
        links = []
        for k in range(args.videos):
            video = sample_videos()[k % 3]
            links.append(Path(tmp) / f"v{k}{video.suffix}")
            links[-1].symlink_to(video)
        plan = FeaturePlan(dense=DenseClips(pre.clip_len, 16, pre.frame_interval), batch_size=args.batch_size)
        runs = {}
        for decoder in dict.fromkeys([args.decoder, *([args.compare_with] if args.compare_with else [])]):
            out = Path(tmp) / decoder
            tasks = plan_outputs([(v, v.name) for v in links], out)
            job = FeatureJob(plan, weights, out, decoder=decoder, workers=args.workers)
            start = time.perf_counter()
            summary = extract_features(job, tasks, backend)
            runs[decoder] = (summary, time.perf_counter() - start, [np.load(t.out) for t in tasks])
    summary, wall, outputs = runs[args.decoder]
    shape = (1, 3, pre.clip_len, pre.size, pre.size)
    model = bench_inference(backend, args.batch_size, shape, warmup=1, iters=args.iters, progress=False)
    model_clips = 1000 * args.batch_size / model.mean_ms
    record = {"clips": summary.clips, "wall_s": round(wall, 2), "features_clips_per_s": round(summary.clips / wall, 3),
              "model_clips_per_s": round(model_clips, 3), "ratio": round(summary.clips / wall / model_clips, 3),
              "batch_size": args.batch_size, "workers": args.workers, "device": args.device, "size": pre.size,
              "precision": args.precision, "decoder": args.decoder, "transport": summary.transport}  # fmt: skip
    if args.compare_with:  # the same features through the other decoder: how far apart (0: bit for bit)
        other, other_wall, theirs = runs[args.compare_with]
        record[f"{args.compare_with}_clips_per_s"] = round(other.clips / other_wall, 3)
        record[f"max_abs_difference_vs_{args.compare_with}"] = max(
            float(np.abs(a.astype(np.float64) - b).max()) for a, b in zip(outputs, theirs, strict=True)
        )
    print(json.dumps(record))
    return record


class Zeros:
    """A stand-in model: a zero 2048-d feature per view, at once."""

    name, device, num_classes, input_device = "zeros", "cpu", 2048, None

    def __call__(self, views):
        return np.zeros((len(views), 2048), np.float32)


def transport_one(args) -> dict:
    """The sample videos' dense clips (full preprocessing) through ``--transport`` to the stand-in model."""
    with tempfile.TemporaryDirectory() as tmp:
        videos = [sample_videos()[k % 3] for k in range(args.videos)]
        tasks = plan_outputs([(v, f"v{k}{v.suffix}") for k, v in enumerate(videos)], Path(tmp))
        job = FeatureJob(FeaturePlan(batch_size=8), DEFAULT_WEIGHTS, Path(tmp), workers=args.workers,
                         transport=args.transport)  # fmt: skip
        start = time.perf_counter()
        summary = extract_features(job, tasks, Zeros(), sink=Kept())
        return {"seconds": time.perf_counter() - start, "clips": summary.clips, "transport": summary.transport}


def transport(args) -> dict:
    runs = {"pipe": [], "slots": []}
    for _ in range(args.repeats):
        for name in runs:
            command = [sys.executable, __file__, "transport-one", "--transport", name, "--videos", str(args.videos),
                       "--workers", str(args.workers)]  # fmt: skip
            runs[name].append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
    seconds = {name: float(np.median([r["seconds"] for r in rs])) for name, rs in runs.items()}
    record = {"videos": args.videos, "workers": args.workers, "clips": runs["slots"][0]["clips"],
              "seconds_median": seconds, "slots_speedup": round(seconds["pipe"] / seconds["slots"], 3),
              "chunks": runs["slots"][0]["transport"]}  # fmt: skip
    print(json.dumps(record))
    return record


def write_video(path: Path, frames: int, size: tuple[int, int]) -> None:
    import av
    import cv2

    capture = cv2.VideoCapture(str(sample_videos()[1]))
    source = []
    while len(source) < 100:
        ok, bgr = capture.read()
        if not ok:
            break
        source.append(cv2.cvtColor(cv2.resize(bgr, size), cv2.COLOR_BGR2RGB))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(source[i % len(source)], format="rgb24")))
        container.mux(stream.encode())


class Kept:
    """An output stage that keeps the one video's result (its StreamEnd says how many frames were held)."""

    def video(self, result) -> None:
        self.end = result.end

    def failure(self, task, error: str) -> None:
        raise RuntimeError(error)

    def close(self) -> None:
        pass


def memory_one(video: Path) -> dict:
    """One extraction in this process (run by ``memory`` in a fresh one)."""
    kept = Kept()
    with tempfile.TemporaryDirectory() as tmp:
        tasks = plan_outputs([(video, video.name)], tmp)
        job = FeatureJob(FeaturePlan(batch_size=8), DEFAULT_WEIGHTS, Path(tmp), workers=1)
        start = time.perf_counter()
        summary = extract_features(job, tasks, Zeros(), sink=kept)
        wall = time.perf_counter() - start
    kib = 1024
    return {"frames": kept.end.num_frames, "clips": summary.clips, "wall_s": round(wall, 1),
            "main_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // kib,
            "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // kib,
            "frames_held_at_most": kept.end.max_frames_held}  # fmt: skip


def memory(args) -> list[dict]:
    size = tuple(int(v) for v in args.size.split("x"))
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for frames in args.frames:
            video = Path(tmp) / f"long_{frames}.mp4"
            write_video(video, frames, size)
            done = subprocess.run([sys.executable, __file__, "memory-one", str(video)], capture_output=True, text=True,
                                  check=True)  # fmt: skip
            records.append(json.loads(done.stdout.splitlines()[-1]))
            print(json.dumps(records[-1]), flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "memory", "memory-one", "transport", "transport-one"])
    parser.add_argument("video", nargs="?", help="memory-one: the video")
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="torch: fp32, tf32, fp16, bf16")
    parser.add_argument("--small", action="store_true", help="the reduced pipeline (8-frame clips at 64 px)")
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 30000])
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--transport", default="slots", choices=["slots", "pipe"])
    parser.add_argument("--decoder", default="opencv", help="speed: opencv, pyav, nvdec")
    parser.add_argument("--compare-with", help="speed: also run this decoder; the features' largest difference")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "speed":
        speed(args)
    elif args.what == "memory":
        memory(args)
    elif args.what == "transport":
        transport(args)
    elif args.what == "transport-one":
        print(json.dumps(transport_one(args)))
    else:
        print(json.dumps(memory_one(Path(args.video))))


if __name__ == "__main__":
    main()
