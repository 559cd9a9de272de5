"""The real-world corpus (tests/corpus.py) through the GPU decoders, against the CPU path, per file.

Usage:
    python benchmarks/corpus_gpu.py write .corpus        # here (needs PyAV): the corpus, its probes, odd JPEGs
    python benchmarks/corpus_gpu.py check .corpus [--json corpus.json] [--device cuda] [--size 256]

``write`` makes the corpus files (and HEVC, VP9 and AV1 ones large enough for NVDEC), ``probes.json`` (what
:func:`i3d_infer.data.gpu.probe.probe_video` says of each: the lent GPU image has no PyAV, so the probes travel with
the files) and three rawframe directories: a plain one, a greyscale and a CMYK one (JPEGs nvJPEG must hand over).
``check`` (on the GPU; ``--device cpu`` runs the same logic with FFmpeg's planes where PyAV is there) prints the
card's NVDEC limits as the driver reports them, then for every file and protocol what ``--decoder nvdec`` does:
``equal`` (bit for bit the CPU path's frames), ``differs by N`` (max |difference|), ``hands over: <reason>`` (before
a decoder is made), or ``fails: <reason>`` (the reader's error: the evaluation then reads it on the CPU, recorded);
and the same for ``--decoder nvjpeg`` on the rawframes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from i3d_infer.data.gpu.decode import NvdecReader, NvjpegReader
from i3d_infer.data.gpu.probe import NVDEC_CODECS, VideoProbe, card_limits
from i3d_infer.data.pipeline import read_frames, sampler
from i3d_infer.data.transforms import PROTOCOLS, get_protocol
from i3d_infer.errors import HandOver, first_line
from i3d_infer.model.weights import Preprocessing
from i3d_infer.prepare.extract import ExtractOptions, extract_video


def write(directory: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import cv2
    from PIL import Image

    from corpus import Case, make_corpus, write_case
    from i3d_infer.data.gpu.probe import probe_video
    from i3d_infer.prepare.sample_videos import sample_videos

    sample = {path.stem: path for path in sample_videos()}["carphone_pristine"]
    paths = make_corpus(directory / "videos", sample)
    quiet = {"x265-params": "log-level=none"}
    for case in (  # the corpus's HEVC and VP9 are below NVDEC's smallest sizes: these are not
        Case("hevc_256", "hevc_256.mp4", codec="libx265", size=(256, 160), options=quiet),
        Case("vp9_256", "vp9_256.webm", codec="libvpx-vp9", size=(256, 160)),
        Case("av1_256", "av1_256.mkv", codec="libsvtav1", size=(256, 160)),
        Case("hevc_full_range_256", "hevc_full_range_256.mp4", codec="libx265", pix_fmt="yuvj420p", size=(256, 160),
             options=quiet),
    ):  # fmt: skip
        paths[case.name] = write_case(case, directory / "videos", sample)
    probes = {}
    for path in paths.values():
        try:
            probes[path.name] = asdict(probe_video(path))
        except Exception as e:  # the unreadable ones: their reason
            probes[path.name] = {"error": first_line(e)}
    (directory / "probes.json").write_text(json.dumps(probes, indent=1))
    plain = directory / "rawframes" / "plain"
    extract_video(paths["h264"], plain, ExtractOptions())
    for kind in ("grey", "cmyk"):
        (directory / "rawframes" / kind).mkdir(parents=True, exist_ok=True)
    for jpeg in sorted(plain.iterdir()):
        bgr = cv2.imread(str(jpeg))
        cv2.imwrite(str(directory / "rawframes" / "grey" / jpeg.name), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        Image.fromarray(bgr[..., ::-1]).convert("CMYK").save(directory / "rawframes" / "cmyk" / jpeg.name, "JPEG")
    print(f"{len(paths)} videos, their probes and 3 rawframe directories in {directory}")


def check(directory: Path, device: torch.device, size: int) -> dict:
    """On a CPU the decoders' libraries are stood in for as in the tests: FFmpeg's planes for NVDEC's (PyAV),
    cv2's JPEG decoder for nvJPEG."""
    pre = Preprocessing(size=size)
    nv12, jpeg = (None, None) if device.type == "cuda" else _stand_ins()
    probes = json.loads((directory / "probes.json").read_text())
    limits = {codec: card_limits(codec) for codec in NVDEC_CODECS}
    print("NVDEC 8-bit 4:2:0 limits:", limits, flush=True)
    table = {"limits": {k: v and [list(v[0]), list(v[1])] for k, v in limits.items()}, "nvdec": {}, "nvjpeg": {}}
    for name, probe in probes.items():
        for protocol in PROTOCOLS:
            if "error" in probe:
                outcome = f"unreadable: {probe['error']}"
            else:
                reader = NvdecReader(
                    device, get_protocol(protocol), size, batches=nv12, probe=lambda _p, p=probe: VideoProbe(**p)
                )
                outcome = _compare(reader, directory / "videos" / name, protocol, pre)
            table["nvdec"][f"{name} {protocol}"] = outcome
            print(f"nvdec  {name:22s} {protocol:10s} {outcome}", flush=True)
    for kind in ("plain", "grey", "cmyk"):
        path = directory / "rawframes" / kind
        for protocol in PROTOCOLS:
            outcome = _compare(NvjpegReader(device, get_protocol(protocol), size, decode=jpeg), path, protocol, pre)
            table["nvjpeg"][f"{kind} {protocol}"] = outcome
            print(f"nvjpeg {kind:22s} {protocol:10s} {outcome}", flush=True)
    return table


def _stand_ins():
    """The tests' stand-ins: FFmpeg's planes for NVDEC's, cv2's JPEG decoder for nvJPEG's (tests/videos.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from videos import ffmpeg_nv12, opencv_jpeg

    return ffmpeg_nv12, opencv_jpeg([])


def _compare(reader, path: Path, protocol: str, pre: Preprocessing) -> str:
    try:
        expected = read_frames(path, protocol, pre)
    except Exception as e:
        expected = f"cpu: {first_line(e)}"
    try:
        count, indices, frames, _ = reader.read(path, sampler(pre), None)
    except HandOver as e:
        return f"hands over: {str(e).removeprefix(f'{path}: ')}"
    except Exception as e:
        return f"fails: {first_line(e)}"
    if isinstance(expected, str):
        return f"decoded on the GPU, but {expected}"
    if count != expected.num_frames or not np.array_equal(indices, expected.frame_indices):
        return f"other frames: {count} decoded (cpu {expected.num_frames})"
    ours = frames.cpu().numpy()
    if ours.shape != expected.frames.shape:
        return f"other shape {ours.shape} (cpu {expected.frames.shape})"
    worst = int(np.abs(ours.astype(np.int16) - expected.frames).max())
    return "equal" if worst == 0 else f"differs by {worst} ({np.mean(ours != expected.frames):.1%} of values)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["write", "check"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--json", type=Path, help="check: write the table here")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=256, help="the short side / crop (the model's input is 256)")
    args = parser.parse_args()
    if args.step == "write":
        write(args.directory)
        return
    table = check(args.directory, torch.device(args.device), args.size)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
