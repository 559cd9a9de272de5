"""The ``i3d`` command: thin wrappers that parse arguments, call the library and print results."""

from __future__ import annotations

import argparse
import json
import sys

from .data.decode import DECODERS, DEFAULT_DECODER
from .data.transforms import PROTOCOLS
from .errors import DownloadError, I3DError
from .evaluate.metrics import FUSIONS

PREDICT_EXAMPLE = """example:
  i3d predict video1.mp4 video2.mp4 --checkpoint i3d_nl_dot_product_r50.pth --topk 5
  i3d predict rawframes/abseiling_0001 --protocol seed --json > predictions.jsonl

protocols:
""" + "\n".join(f"  {p.name:<11} {p.description}" for p in PROTOCOLS.values())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="i3d", description="I3D non-local video action recognition, offline.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict",
        help="predict the action in videos or rawframe directories",
        epilog=PREDICT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("videos", nargs="+", help="video files or rawframe directories (img_00001.jpg, ...)")
    predict.add_argument("--checkpoint", help="mmaction2 .pth path or http(s) URL (default: the official checkpoint)")
    predict.add_argument("--protocol", default="seed", choices=list(PROTOCOLS), help="view protocol (default: seed)")
    predict.add_argument("--topk", type=int, default=5, help="classes to show per video (default: 5)")
    predict.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    predict.add_argument("--label-map", help="class names, one per line (default: the Kinetics-400 names)")
    predict.add_argument("--fusion", default="prob", choices=FUSIONS, help="clip fusion (default: prob)")
    predict.add_argument("--decoder", default=DEFAULT_DECODER, choices=list(DECODERS), help="video decoder")
    predict.add_argument("--json", action="store_true", help="one JSON object per line per video")
    predict.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    predict.set_defaults(run=run_predict)

    samples = commands.add_parser("samples", help="print the paths of the bundled sample videos")
    samples.set_defaults(run=run_samples)
    return parser


def run_predict(args: argparse.Namespace) -> int:
    from .predict import Predictor

    if args.topk < 1:
        raise I3DError(f"--topk must be >= 1, got {args.topk}")
    try:
        predictor = Predictor.from_checkpoint(
            args.checkpoint, device=args.device, label_map=args.label_map, fusion=args.fusion, decoder=args.decoder
        )
    except DownloadError as e:
        if args.checkpoint:
            raise
        raise DownloadError(f"{e}, or pass --checkpoint PATH") from e
    failed = 0
    for video in args.videos:
        try:
            prediction = predictor.predict(video, protocol=args.protocol, topk=args.topk)
        except I3DError as e:
            if args.debug:
                raise
            print(f"i3d: {e}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(prediction.to_json()), flush=True)
        else:
            print(f"{video}  ({prediction.num_frames} frames, protocol {prediction.protocol})")
            for c in prediction.topk:
                print(f"  {c.prob:7.4f}  {c.label}")
            sys.stdout.flush()
    if failed:
        print(f"i3d: {failed} of {len(args.videos)} videos failed", file=sys.stderr)
    return 1 if failed else 0


def run_samples(args: argparse.Namespace) -> int:
    from .data.samples import sample_videos

    for path in sample_videos():
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``i3d`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except I3DError as e:
        if args.debug:
            raise
        print(f"i3d: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("i3d: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
