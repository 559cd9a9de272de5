"""``i3d export`` and ``i3d quantize``."""

from __future__ import annotations

import argparse
import sys

from ..errors import I3DError
from ..export import DEFAULT_OPSET, DEFAULT_SHAPE, INPUT_KINDS, OUTPUT_KINDS


def add_commands(commands) -> None:
    _add_export(commands)
    _add_quantize(commands)


def _add_export(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export to ONNX and verify it against PyTorch on a real video",
        epilog="examples:\n  i3d export --checkpoint i3d_nl.pth --output i3d.onnx\n"
        "  i3d export --checkpoint i3d_nl.pth --output i3d_atc.onnx --opset 11 --input float32 --simplify  # for ATC\n"
        "  i3d export --checkpoint i3d_nl.pth --output i3d_dyn.onnx --dynamic-batch --output-kind video-probs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--checkpoint", help="checkpoint path or URL, any family (default: the official mmaction2 one)")
    export.add_argument("--output", required=True, help="the .onnx file to write")
    export.add_argument(
        "--shape",
        type=int,
        nargs=6,
        metavar=("B", "V", "C", "T", "H", "W"),
        help=f"input shape (default: {' '.join(map(str, DEFAULT_SHAPE))}; Inception: 1 1 3 64 224 224)",
    )
    export.add_argument("--dynamic-batch", action="store_true", help="make B a free dimension")
    export.add_argument(
        "--dynamic-time", action="store_true", help="make T a free dimension (Inception: any video length >= 9)"
    )
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    export.add_argument(
        "--input",
        dest="input_kind",
        default="uint8",
        choices=INPUT_KINDS,
        help="uint8 (normalization in the graph, default) or float32 (normalized input, the seed's)",
    )
    export.add_argument(
        "--output-kind",
        default="clip-logits",
        choices=OUTPUT_KINDS,
        help="clip-logits: logits (B*V, 400), like the seed; video-probs: fused probs (B, 400)",
    )
    export.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    export.add_argument("--fp16", action="store_true", help="float16 weights and activations (I/O types unchanged)")
    export.add_argument("--no-verify", action="store_true", help="skip the verification (not recommended)")
    export.add_argument("--verify-video", help="video for the verification (default: the sample videos)")
    export.set_defaults(run=run_export)


def _add_quantize(commands) -> None:
    quantize = commands.add_parser(
        "quantize",
        help="int8 OpenVINO model from an exported graph (NNCF), with its error against fp32 measured",
        epilog="examples:\n  i3d quantize --model i3d.onnx --output i3d_int8.xml   # calibrated on the sample videos\n"
        "  i3d quantize --model i3d.onnx --output i3d_int8.xml --calibration-list train_list_videos.txt \\\n"
        "      --root videos_train --max-videos 300\n"
        "  i3d predict v.mp4 --backend openvino --model i3d_int8.xml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    quantize.add_argument("--model", required=True, help="graph from i3d export (uint8 input)")
    quantize.add_argument("--output", required=True, help="OpenVINO IR to write (.xml; .bin and .json beside it)")
    quantize.add_argument("--calibration", nargs="+", help="calibration videos (default: the sample videos)")
    quantize.add_argument("--calibration-list", help="or a list file of calibration videos (with --root)")
    quantize.add_argument("--root", help="directory the list's paths are relative to")
    quantize.add_argument("--max-videos", type=int, default=300, help="calibration videos from the list (300)")
    quantize.add_argument("--check", nargs="+", help="videos to measure the error on (default: the calibration ones)")
    quantize.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    quantize.set_defaults(run=run_quantize)


def run_export(args: argparse.Namespace) -> int:
    from ..export.onnx import ExportOptions, example_input, export_onnx, verify_onnx
    from ..model.checkpoint import load_model
    from ..model.weights import choose_weights

    weights, _ = choose_weights(args.checkpoint)
    pre = weights.preprocessing
    shape = args.shape or ((1, 1, 3, 64, pre.crop_size, pre.crop_size) if pre.whole_video else DEFAULT_SHAPE)
    options = ExportOptions(
        shape=tuple(shape),
        dynamic_batch=args.dynamic_batch,
        dynamic_time=args.dynamic_time,
        opset=args.opset,
        input_kind=args.input_kind,
        output_kind=args.output_kind,
        simplify=args.simplify,
        fp16=args.fp16,
    )
    recognizer = load_model(args.checkpoint, weights)
    example = None if args.no_verify else example_input(options, weights.preprocessing, args.verify_video)
    path = export_onnx(recognizer, args.output, options, weights=weights)
    print(
        f"wrote {path} (input video {list(options.shape)} {options.input_kind}, output {options.output_name}, "
        f"opset {options.opset}{', dynamic batch' if options.dynamic_batch else ''}"
        f"{', dynamic time' if options.dynamic_time else ''}"
        f"{', fp16' if options.fp16 else ''}{', simplified' if options.simplify else ''})"
    )
    if example is None:
        print("not verified (--no-verify)")
        return 0
    result = verify_onnx(path, recognizer, options, example=example)
    verdict = "OK" if result.passed else "FAILED"
    print(
        f"verified on a real video with ONNX Runtime: max abs error {result.max_abs:.3g}, "
        f"max rel error {result.max_rel:.3g} (tolerance {result.tolerance:g}): {verdict}"
    )
    if not result.passed:
        print(
            f"i3d: {path}: exported graph differs from PyTorch beyond tolerance; kept for inspection", file=sys.stderr
        )
        return 1
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    from ..export.int8 import quantize_openvino
    from ..prepare.sample_videos import sample_videos

    calibration = args.calibration
    if args.calibration_list:
        from ..data.datasets import read_list

        if not args.root:
            raise I3DError("--calibration-list needs --root DIR")
        _, entries = read_list(args.calibration_list)
        calibration = [f"{args.root}/{e.video_id}" for e in entries[: args.max_videos]]
    calibration = calibration or [str(p) for p in sample_videos()]
    report = quantize_openvino(args.model, args.output, calibration, check=args.check, threads=args.threads or None)
    print(f"wrote {args.output} (int8, calibrated on {report.calibration_videos} videos)")
    print(
        f"against fp32 on {report.videos} videos: max rel error of clip logits {report.max_rel:.3g}, "
        f"clip top-1 agreement {report.clip_top1_agreement:.4f}, video top-1 agreement "
        f"{report.video_top1_agreement:.4f} (also in {args.output.removesuffix('.xml')}.json)"
    )
    return 0
