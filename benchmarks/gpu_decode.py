"""Where GPU decoding's time goes: NVDEC and nvJPEG alone, then our readers (conversion, resize), by thread count.

Usage (GPU machine with PyNvVideoCodec and torchvision; about a minute):
    python benchmarks/gpu_decode.py [--videos 96] [--threads 1 4 8 16]

Rows, each a number of threads decoding --videos copies of bikes.mp4 (or of its rawframes) one video per task:
  nvdec raw       SimpleDecoder(NATIVE) reconfigured per video, every frame fetched in batches, nothing else
  nvdec raw own   the same, the decoder writing on the thread's own stream (cuda_stream=...) instead of the default
                  stream, which NVIDIA's decoder synchronises after every frame
  nvdec new       the same as raw with a new SimpleDecoder per video (what reuse saves)
  nvdec copy      raw own + the sampled frames wrapped (DLPack) and copied off the decoder's surfaces per batch, as
                  the reader does, without the conversion: tells the wrapping's cost from the conversion's
  nvdec copy torch the same, wrapped by torch.from_dlpack(frame) (its first __dlpack__ call fails on
                  PyNvVideoCodec's signature every frame) instead of gpu_decode.wrap
  nvdec reader bN data.gpu_decode.NvdecReader asking the decoder for N frames at a time (--nvdec-batches): + the
                  sampled frames' NV12 -> RGB and resize (the fused Triton kernel), seed protocol
  nvdec torch ops the reader, batches of 64, converting with the torch ops instead of the fused kernel
  nvdec reader dflt the reader, batches of 64, its decoder on the default stream (a wait on the host per batch):
                  what the decoder on the thread's stream saves
  nvjpeg raw      decode_jpeg(device="cuda") of one video's sampled frames per call
  nvjpeg raw x8   the same with 8 videos' frames per call (what batching across videos can give)
  nvjpeg reader   data.gpu_decode.NvjpegReader, one for all threads (file reading + decode of the videos of all
                  waiting threads in one call + resize); the mean videos per call is printed
Prints videos/s and frames/s per row.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch

from i3d_infer.data.decode import count_rawframes
from i3d_infer.data.gpu import fused_nv12
from i3d_infer.data.gpu.decode import (
    NVDEC_BATCH,
    NvdecReader,
    NvjpegReader,
    PyNvVideoCodecFrames,
    consumer_stream,
    wrap,
)
from i3d_infer.data.pipeline import sampler
from i3d_infer.data.transforms import get_protocol
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.prepare.extract import ExtractOptions, extract_all
from i3d_infer.prepare.sample_videos import sample_videos


def time_row(name: str, threads: int, tasks: int, frames_per_video: int, work, videos_per_task: int = 1) -> None:
    """``work(local)`` ``tasks`` times from ``threads`` threads (``local``: the thread's own state), after one
    warm-up task per thread."""
    local = threading.local()
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: work(local), range(threads)))  # warm-up: decoders, streams, tables made
            start = time.perf_counter()
            list(pool.map(lambda _: work(local), range(tasks)))
            seconds = time.perf_counter() - start
    except Exception as e:  # one row's failure is a line: the other rows of a device run still count
        print(f"{name:<17} {threads:>3} threads failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return
    videos = tasks * videos_per_task
    print(
        f"{name:<17} {threads:>3} threads {videos / seconds:8.1f} videos/s "
        f"{videos * frames_per_video / seconds:9.0f} frames/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=96)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--nvdec-batches", type=int, nargs="+", default=[NVDEC_BATCH, 128, 256])
    parser.add_argument("--rows", nargs="+", help="only the rows whose names start with one of these")
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval (s): how long a thread back from a GIL-free "
        "call waits for the GIL at most before asking for it (Python's default 0.005)",
    )
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    print(f"GIL switch interval {sys.getswitchinterval() * 1e3:.2f} ms")

    def timed(name: str, *rest, **more) -> None:
        if not args.rows or any(name.startswith(prefix) for prefix in args.rows):
            time_row(name, *rest, **more)

    import PyNvVideoCodec as nvc
    from torchvision.io import ImageReadMode, decode_jpeg

    bikes = str(next(p for p in sample_videos() if p.stem == "bikes"))
    device, pre, seed = torch.device(args.device), DEFAULT_WEIGHTS.preprocessing, get_protocol("seed")
    total = 250
    planned_video = np.unique(sampler(pre)(total))
    print(f"fused NV12 kernel: {fused_nv12.unavailable(device) or 'used'}")

    def from_dlpack(frame, stream):  # torch's own: offers max_version first
        return torch.from_dlpack(frame)

    def own_stream(local) -> torch.cuda.Stream:
        if getattr(local, "stream", None) is None:
            local.stream = torch.cuda.Stream(device)
        return local.stream

    def simple(local, reuse: bool, wrap_frame=None, on_stream: bool = False):
        key = f"decoder{on_stream}"
        if reuse and getattr(local, key, None) is not None:
            getattr(local, key).reconfigure_decoder(bikes)
        else:
            setattr(
                local,
                key,
                nvc.SimpleDecoder(
                    bikes,
                    cuda_stream=own_stream(local).cuda_stream if on_stream else 0,
                    use_device_memory=True,
                    output_color_type=nvc.OutputColorType.NATIVE,
                ),
            )
        decoder, done, stream = getattr(local, key), 0, own_stream(local)
        with torch.cuda.stream(stream):
            handle = consumer_stream(device)
            while done < total:
                frames = decoder.get_batch_frames(min(NVDEC_BATCH, total - done))
                if not frames:
                    break
                if wrap_frame is not None:
                    rows = planned_video[(planned_video >= done) & (planned_video < done + len(frames))]
                    if len(rows):
                        torch.stack([wrap_frame(frames[int(k) - done], handle) for k in rows])
                        if not on_stream:  # the next call reuses the surfaces (on its stream: ordered there)
                            stream.synchronize()
                done += len(frames)
        stream.synchronize()  # the video complete, as a decode thread waits for it

    def nvdec_reader(local, batch: int, fused: bool | None = None, on_stream: bool = True):
        key = f"nvdec{batch}{fused}{on_stream}"
        if getattr(local, key, None) is None:
            frames = PyNvVideoCodecFrames(device, batch, on_stream)
            setattr(local, key, NvdecReader(device, seed, pre.size, batches=frames, fused=fused))
        stream = own_stream(local)
        with torch.cuda.stream(stream):
            getattr(local, key).read(bikes, sampler(pre))
        stream.synchronize()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        (source / "bikes.mp4").symlink_to(bikes)
        extract_all(source, Path(tmp) / "frames", ExtractOptions(), progress=False, log=lambda _: None)
        frames_dir = Path(tmp) / "frames" / "bikes"
        count = count_rawframes(frames_dir)
        planned = np.unique(sampler(pre)(count))
        files = [frames_dir / f"img_{i + 1:05d}.jpg" for i in planned]

        def jpeg_raw(local, videos: int = 1):
            data = [torch.from_numpy(np.fromfile(f, np.uint8)) for f in files] * videos
            with torch.cuda.stream(own_stream(local)):
                decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            local.stream.synchronize()

        def jpeg_reader(shared: NvjpegReader, local):
            stream = own_stream(local)
            with torch.cuda.stream(stream):
                shared.read(frames_dir, sampler(pre), count)
            stream.synchronize()

        for threads in args.threads:
            timed("nvdec raw", threads, args.videos, total, lambda local: simple(local, True))
            timed("nvdec raw own", threads, args.videos, total, lambda local: simple(local, True, on_stream=True))
            timed("nvdec new", threads, args.videos, total, lambda local: simple(local, False))
            copy = partial(simple, reuse=True, on_stream=True)
            timed("nvdec copy", threads, args.videos, total, partial(copy, wrap_frame=wrap))
            timed("nvdec copy torch", threads, args.videos, total, partial(copy, wrap_frame=from_dlpack))
            for batch in args.nvdec_batches:
                timed(f"nvdec reader b{batch}", threads, args.videos, total, lambda lo, b=batch: nvdec_reader(lo, b))
            timed("nvdec torch ops", threads, args.videos, total, lambda lo: nvdec_reader(lo, NVDEC_BATCH, False))
            dflt = partial(nvdec_reader, batch=NVDEC_BATCH, on_stream=False)
            timed("nvdec reader dflt", threads, args.videos, total, dflt)
            timed("nvjpeg raw", threads, args.videos, len(planned), jpeg_raw)
            timed("nvjpeg raw x8", threads, max(1, args.videos // 8), len(planned), lambda lo: jpeg_raw(lo, 8), 8)
            shared = NvjpegReader(device, seed, pre.size, most=max(threads, 1))
            timed("nvjpeg reader", threads, args.videos, len(planned), lambda lo, r=shared: jpeg_reader(r, lo))
            if sizes := shared.decoded.sizes:
                print(f"{'':<17} nvjpeg reader: {sum(sizes) / len(sizes):.1f} videos per decode call")


if __name__ == "__main__":
    main()
