"""Where GPU decoding's time goes: NVDEC and nvJPEG alone, then our readers (conversion, resize), by thread count.

Usage (GPU machine with PyNvVideoCodec and torchvision; about a minute):
    python benchmarks/gpu_decode.py [--videos 96] [--threads 1 4 8 16]

Rows, each a number of threads decoding --videos copies of bikes.mp4 (or of its rawframes) one video per task:
  nvdec raw       SimpleDecoder(NATIVE) reconfigured per video, every frame fetched in batches, nothing else
  nvdec new       the same with a new SimpleDecoder per video (what reuse saves)
  nvdec reader    data.gpu_decode.NvdecReader: + the sampled frames' NV12 -> RGB and resize, seed protocol
  nvjpeg raw      decode_jpeg(device="cuda") of the video's sampled frames, one batch per video
  nvjpeg reader   data.gpu_decode.NvjpegReader (file reading + decode + resize)
Prints videos/s and frames/s per row.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from i3d_infer.data.decode import count_rawframes
from i3d_infer.data.extract import ExtractOptions, extract_all
from i3d_infer.data.gpu_decode import NVDEC_BATCH, NvdecReader, NvjpegReader
from i3d_infer.data.pipeline import sampler
from i3d_infer.data.samples import sample_videos
from i3d_infer.data.transforms import get_protocol
from i3d_infer.model.weights import DEFAULT_WEIGHTS


def timed(name: str, threads: int, videos: int, frames_per_video: int, work) -> None:
    local = __import__("threading").local()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: work(local), range(threads)))  # warm-up: one video per thread, decoders made
        start = time.perf_counter()
        list(pool.map(lambda _: work(local), range(videos)))
        seconds = time.perf_counter() - start
    print(
        f"{name:<14} {threads:>3} threads {videos / seconds:8.1f} videos/s "
        f"{videos * frames_per_video / seconds:9.0f} frames/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=96)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--variants", action="store_true", help="readers only: NVDEC batch 32/64, own/default stream")
    args = parser.parse_args()
    import PyNvVideoCodec as nvc
    from torchvision.io import ImageReadMode, decode_jpeg

    bikes = str(next(p for p in sample_videos() if p.stem == "bikes"))
    device, pre, seed = torch.device("cuda"), DEFAULT_WEIGHTS.preprocessing, get_protocol("seed")
    total = 250

    def simple(local, reuse: bool):
        if reuse and getattr(local, "decoder", None) is not None:
            local.decoder.reconfigure_decoder(bikes)
        else:
            local.decoder = nvc.SimpleDecoder(
                bikes, use_device_memory=True, output_color_type=nvc.OutputColorType.NATIVE
            )
        done = 0
        while done < total:
            frames = local.decoder.get_batch_frames(min(NVDEC_BATCH, total - done))
            if not frames:
                break
            done += len(frames)

    def reader(local, kind: str, path, count=None, batch=NVDEC_BATCH, own_stream=True):
        key = f"{kind}{batch}{own_stream}"
        if getattr(local, key, None) is None:
            made = (
                NvdecReader(device, seed, pre.size, batch=batch)
                if kind == "nvdec"
                else NvjpegReader(device, seed, pre.size)
            )
            setattr(local, key, made)
            local.stream = torch.cuda.Stream()
        stream = local.stream if own_stream else torch.cuda.current_stream()
        with torch.cuda.stream(stream):
            getattr(local, key).read(path, sampler(pre), count)
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

        def jpeg_raw(local):
            data = [torch.from_numpy(np.fromfile(f, np.uint8)) for f in files]
            decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            torch.cuda.current_stream().synchronize()

        if args.variants:
            for threads in args.threads:
                for own in (True, False):
                    for batch in (32, 64):
                        name = f"nvdec b{batch} {'own' if own else 'dflt'}"
                        timed(
                            name,
                            threads,
                            args.videos,
                            total,
                            lambda lo, b=batch, o=own: reader(lo, "nvdec", bikes, None, b, o),
                        )
                    name = f"nvjpeg {'own' if own else 'dflt'}"
                    timed(
                        name,
                        threads,
                        args.videos,
                        len(planned),
                        lambda lo, o=own: reader(lo, "nvjpeg", frames_dir, count, own_stream=o),
                    )
            return
        for threads in args.threads:
            timed("nvdec raw", threads, args.videos, total, lambda local: simple(local, True))
            timed("nvdec new", threads, args.videos, total, lambda local: simple(local, False))
            timed("nvdec reader", threads, args.videos, total, lambda local: reader(local, "nvdec", bikes))
            timed("nvjpeg raw", threads, args.videos, len(planned), jpeg_raw)
            timed(
                "nvjpeg reader", threads, args.videos, len(planned), lambda lo: reader(lo, "nvjpeg", frames_dir, count)
            )


if __name__ == "__main__":
    main()
