"""``i3d predict``, ``i3d demo`` and ``i3d samples``."""

from __future__ import annotations

import argparse
import json
import sys

from ..data.decode import DECODERS, DEFAULT_DECODER
from ..data.transforms import PROTOCOLS
from ..errors import DownloadError, I3DError, VideoError
from ..evaluate.metrics import FUSIONS
from ._common import chosen_weights, flow_argument, flow_method, model_arguments, placement, sampling_argument

PREDICT_EXAMPLE = """example:
  i3d predict video1.mp4 video2.mp4 --checkpoint i3d_nl_dot_product_r50.pth --topk 5
  i3d predict rawframes/abseiling_0001 --protocol seed --json > predictions.jsonl
  i3d predict video1.mp4 --annotate video1_labelled.mp4

protocols:
""" + "\n".join(f"  {p.name:<11} {p.description}" for p in PROTOCOLS.values())


def add_commands(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict the action in videos or rawframe directories",
        epilog=PREDICT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("videos", nargs="+", help="video files or rawframe directories (img_00001.jpg, ...)")
    model_arguments(predict, "mmaction2 .pth path or http(s) URL (default: the official checkpoint)")
    predict.add_argument("--protocol", choices=list(PROTOCOLS), help="view protocol (default: the checkpoint's own)")
    sampling_argument(predict)
    predict.add_argument("--topk", type=int, default=5, help="classes to show per video (default: 5)")
    predict.add_argument("--label-map", "--labels", help="class names, one per line (default: the checkpoint's)")
    flow_argument(predict, "fused as DeepMind does (softmax of the summed logits)")
    predict.add_argument("--fusion", default="prob", choices=FUSIONS, help="clip fusion (default: prob)")
    predict.add_argument("--decoder", default=DEFAULT_DECODER, choices=list(DECODERS), help="video decoder")
    predict.add_argument("--json", action="store_true", help="one JSON object per line per video")
    predict.add_argument(
        "--annotate", metavar="OUT.mp4", help="write the video with each clip's and the video's top-3 drawn on it"
    )
    predict.add_argument(
        "--lossless", action="store_true", help="with --annotate: lossless RGB H.264 (exact pixels, few players)"
    )
    predict.add_argument(
        "--timeline",
        metavar="OUT.json",
        help="a window every --clip-interval frames with its top-k (.json or .csv) and OUT.png, the classes over "
        "time; with --annotate, every frame shows the top-3 of the window covering it",
    )
    predict.add_argument("--clip-interval", type=int, default=16, help="with --timeline: frames between windows")
    predict.set_defaults(run=run_predict)
    demo = commands.add_parser(
        "demo",
        help="the whole flow on the bundled sample videos: lists, rawframes, export, eval, bench",
        epilog="example:\n  i3d demo --dir demo_run --checkpoint i3d_nl_dot_product_r50.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--dir", help="where to put everything (default: a new temporary directory)")
    demo.add_argument("--checkpoint", help="mmaction2 .pth path or URL (default: the official checkpoint)")
    demo.set_defaults(run=run_demo)
    samples = commands.add_parser("samples", help="print the paths of the bundled sample videos")
    samples.set_defaults(run=run_samples)


def run_predict(args: argparse.Namespace) -> int:
    from ..predict import Predictor

    if args.topk < 1:
        raise I3DError(f"--topk must be >= 1, got {args.topk}")
    for option in ("annotate", "timeline"):
        if getattr(args, option) and len(args.videos) != 1:
            raise I3DError(f"--{option} writes one video; got {len(args.videos)} inputs")
    where = placement(args, batched=False)
    weights = chosen_weights(args)
    try:
        predictor = Predictor.create(
            args.checkpoint,
            backend=args.backend,
            model=args.model,
            device=where.device,
            threads=args.threads or None,
            label_map=args.label_map,
            engine=args.engine,
            precision=where.precision,
            fusion=args.fusion,
            decoder=args.decoder,
            weights=weights,
            flow_checkpoint=args.flow_checkpoint,
            flow_method=flow_method(args, where.device, wanted=bool(args.flow_checkpoint)),
        )
    except DownloadError as e:
        if args.checkpoint:
            raise
        raise DownloadError(f"{e}, or pass --checkpoint PATH") from e
    if args.timeline:
        return _timeline(predictor, args)
    if args.annotate:
        return _annotate(predictor, args)
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
            _print_prediction(video, prediction)
    if failed:
        print(f"i3d: {failed} of {len(args.videos)} videos failed", file=sys.stderr)
    return 1 if failed else 0


def _timeline(predictor, args: argparse.Namespace) -> int:
    from ..data.sampling import DenseClips, windows
    from ..features.plan import FeaturePlan
    from ..features.timeline import predict_timeline, timeline_path, write_timeline

    timeline_path(args.timeline)
    pre = predictor.weights.preprocessing
    if pre.whole_video:  # the Inception models: 64-frame windows (video_features') every --clip-interval
        dense = windows(64, args.clip_interval, tail="pad")
    else:
        dense = DenseClips(pre.clip_len, args.clip_interval, pre.frame_interval)
    plan = FeaturePlan(dense=dense, protocol=args.protocol, batch_size=8)
    try:
        timeline = predict_timeline(predictor, args.videos[0], plan, topk=args.topk)
    except VideoError as e:
        if args.debug:
            raise
        print(f"i3d: {e}", file=sys.stderr)
        return 1
    written = write_timeline(timeline, args.timeline)
    print(
        f"timeline: {', '.join(map(str, written))} ({len(timeline.probs)} windows, every {args.clip_interval} frames)"
    )
    return _annotate(predictor, args, timeline=timeline) if args.annotate else 0


def _annotate(predictor, args: argparse.Namespace, timeline=None) -> int:
    from ..annotate import annotate

    try:
        result = annotate(
            predictor, args.videos[0], args.annotate, protocol=args.protocol, lossless=args.lossless, timeline=timeline
        )
    except VideoError as e:  # like a bad video without --annotate: one line, exit code 1
        if args.debug:
            raise
        print(f"i3d: {e}", file=sys.stderr)
        return 1
    width, height = result.size
    _print_prediction(args.videos[0], result.prediction)
    print(f"annotated: {result.path} ({result.frames} frames, {width}x{height})")
    return 0


def _print_prediction(video: str, prediction) -> None:
    handed_over = f", decoded by {prediction.decoder}" if "(" in prediction.decoder else ""  # never silently
    print(f"{video}  ({prediction.num_frames} frames, protocol {prediction.protocol}{handed_over})")
    for c in prediction.topk:
        print(f"  {c.prob:7.4f}  {c.label}")
    sys.stdout.flush()


def run_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo as demo

    demo(args.dir, args.checkpoint, log=lambda line: print(line, flush=True))
    return 0


def run_samples(args: argparse.Namespace) -> int:
    from ..prepare.sample_videos import sample_videos

    for path in sample_videos():
        print(path)
    return 0
