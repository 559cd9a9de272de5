"""``i3d fetch``, ``i3d lists`` and ``i3d extract``: preparing a dataset."""

from __future__ import annotations

import argparse
import sys

from ..data.flow import FLOW_LAYOUTS, OPENCV
from ..errors import I3DError
from ..machine import cuda_available_before_fork
from ..prepare.annotations import VIDEO_EXTENSIONS
from ._common import flow_method, flow_method_argument


def add_commands(commands) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="download the Kinetics-400 annotation CSVs or the official checkpoint (once, verified)",
        epilog="example:\n  i3d fetch annotations --to data/kinetics400/annotations\n  i3d fetch checkpoint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch.add_argument("what", choices=["annotations", "checkpoint"])
    fetch.add_argument("--to", help="directory to download into (default: the cache, $I3D_INFER_CACHE)")
    fetch.add_argument("--url", action="append", help="download these URLs instead of the defaults (repeatable)")
    fetch.set_defaults(run=run_fetch)

    lists = commands.add_parser(
        "lists",
        help="write the label map and list files of a split from Kinetics annotation CSVs",
        epilog="example:\n  i3d lists --train ann/kinetics_train.csv --split ann/kinetics_val.csv \\\n"
        "      --videos data/videos_val --rawframes data/rawframes_val --out data/lists",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lists.add_argument("--train", required=True, help="training CSV: defines the classes (sorted names)")
    lists.add_argument("--split", required=True, help="CSV of the split to list, e.g. kinetics_val.csv")
    lists.add_argument("--videos", help="video directory: write <split>_list_videos.txt")
    lists.add_argument("--rawframes", help="rawframe directory: write <split>_list_rawframes.txt")
    lists.add_argument("--flow", help="flow image directory (i3d extract --task flow|both): <split>_list_flow.txt")
    lists.add_argument("--out", required=True, help="output directory")
    lists.add_argument("--ext", default=",".join(VIDEO_EXTENSIONS), help="video extensions (comma-separated)")
    lists.set_defaults(run=run_lists)

    _add_extract(commands)


def _add_extract(commands) -> None:
    extract = commands.add_parser(
        "extract",
        help="extract videos to rawframe directories (img_00001.jpg, ...), parallel and resumable",
        epilog="example:\n  i3d extract data/videos_val data/rawframes_val --workers 8\n"
        "  i3d extract videos/ frames/ --short-side 256 --ext mp4,webm --timeout 120",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extract.add_argument("videos_dir")
    extract.add_argument("out_dir")
    size = extract.add_mutually_exclusive_group()
    size.add_argument("--size", default="256x256", help="WxH, aspect ratio ignored (default: 256x256, the seed's)")
    size.add_argument("--short-side", type=int, help="short side to this many pixels, ratio kept")
    extract.add_argument(
        "--task",
        default="rgb",
        choices=["rgb", "flow", "both"],
        help="rgb frames, TV-L1 flow images (--flow opencv: about 1-3 frame pairs/s a core at 176x144, 0.2-0.5 "
        "at 602x256, i.e. minutes of one core per 10-second video) or both",
    )
    flow_method_argument(extract)
    extract.add_argument(
        "--device", help="--flow torch: cpu, cuda or cuda:N (default: cuda when torch sees a GPU, else cpu)"
    )
    extract.add_argument(
        "--flow-layout",
        default="denseflow",
        choices=list(FLOW_LAYOUTS),
        help="denseflow: flow_x_00000.jpg, gray frames shrunk to --new-short, rounding (build_rawframes); "
        "mmaction2-cpu: x_00001.jpg, native size, truncating (tools/misc/flow_extraction.py)",
    )
    extract.add_argument("--bound", type=float, default=20.0, help="flow pixels mapped to 0 and 255 (default: 20)")
    extract.add_argument(
        "--flow-format", default="jpg", choices=["jpg", "npy"],
        help="jpg: the layout's 8-bit images; npy: <video>/<video>.flow.npy, (N-1, H, W, 2) float32 pixels, x then y",
    )  # fmt: skip
    extract.add_argument("--new-short", type=int, default=256, help="denseflow layout: short side before TV-L1")
    extract.add_argument("--ext", default="mp4", help="video extensions, comma-separated (default: mp4)")
    extract.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    extract.add_argument("--quality", type=int, default=95, help="JPEG quality (default: 95)")
    extract.add_argument("--timeout", type=float, default=600, help="seconds per video before giving up (600)")
    extract.add_argument("--ignore-disk-check", action="store_true", help="go on even if the disk looks too small")
    extract.set_defaults(run=run_extract)


def run_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..model.download import download
    from ..model.weights import DEFAULT_WEIGHTS
    from ..prepare.annotations import KINETICS400_ANNOTATIONS

    urls = args.url or (KINETICS400_ANNOTATIONS if args.what == "annotations" else (DEFAULT_WEIGHTS.url,))
    for url in urls:
        print(download(url, Path(args.to) if args.to else None))
    return 0


def run_lists(args: argparse.Namespace) -> int:
    from ..prepare.annotations import make_lists

    result = make_lists(
        args.train, args.split, args.out, videos=args.videos, rawframes=args.rawframes, flow=args.flow,
        extensions=_extensions(args.ext),
    )  # fmt: skip
    print(f"label map: {result.label_map}")
    for kind, path in result.lists.items():
        print(f"{kind} list: {path}: {result.reports[kind].summary()}")
    if result.flow_reading:
        print(f"flow list: read it in mmaction2 with {result.flow_reading}")
    print(f"report: {result.report_file}")
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from ..prepare.extract import ExtractOptions, extract_all

    size = None
    if not args.short_side:
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise I3DError(f"--size must look like 256x256, got {args.size!r}") from None
        size = (width, height)
    if not 1 <= args.quality <= 100:
        raise I3DError(f"--quality must be 1..100, got {args.quality}")
    options = ExtractOptions(
        size=size, short_side=args.short_side, quality=args.quality, timeout=args.timeout, task=args.task,
        flow_layout=args.flow_layout, bound=args.bound, new_short=args.new_short, flow_format=args.flow_format,
        flow=_flow(args),
    )  # fmt: skip
    report = extract_all(
        args.videos_dir,
        args.out_dir,
        options,
        workers=args.workers or None,
        extensions=_extensions(args.ext),
        check_disk=not args.ignore_disk_check,
        log=lambda line: print(line, file=sys.stderr),
    )
    for failure in report.failed:
        print(f"i3d: {failure['video']}: {failure['reason']}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0


def _flow(args: argparse.Namespace):
    """The TV-L1 of ``--task flow|both`` (``--flow``, on ``--device`` or the GPU torch sees)."""
    if args.task == "rgb":
        return flow_method(args, "cpu", wanted=False, needs="--task flow|both") or OPENCV
    return flow_method(args, args.device or ("cuda" if cuda_available_before_fork() else "cpu"), wanted=True)


def _extensions(text: str) -> tuple[str, ...]:
    return tuple(e.strip().lstrip(".").lower() for e in text.split(",") if e.strip())
