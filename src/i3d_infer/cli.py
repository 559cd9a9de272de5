"""The ``i3d`` command: thin wrappers that parse arguments, call the library and print results."""

from __future__ import annotations

import argparse
import json
import sys

from .data.datasets import LIST_FORMATS
from .data.decode import DECODERS, DEFAULT_DECODER, GPU_DECODERS
from .data.transforms import PROTOCOLS
from .errors import DownloadError, I3DError, VideoError
from .evaluate.metrics import FUSIONS
from .export import DEFAULT_OPSET, DEFAULT_SHAPE, INPUT_KINDS, OUTPUT_KINDS
from .model.weights import SAMPLING_MODES
from .prepare.annotations import VIDEO_EXTENSIONS
from .runtime import BACKENDS
from .runtime.base import ENGINES, PRECISION_CHOICES

PREDICT_EXAMPLE = """example:
  i3d predict video1.mp4 video2.mp4 --checkpoint i3d_nl_dot_product_r50.pth --topk 5
  i3d predict rawframes/abseiling_0001 --protocol seed --json > predictions.jsonl
  i3d predict video1.mp4 --annotate video1_labelled.mp4

protocols:
""" + "\n".join(f"  {p.name:<11} {p.description}" for p in PROTOCOLS.values())


def _model_arguments(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="runtime (default: torch)")
    parser.add_argument("--checkpoint", help=checkpoint_help)
    parser.add_argument("--model", help="exported .onnx file, for the onnxruntime and openvino backends")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        help="torch: fast (2D-factored, BN folded, CUDA graphs; the default) or eager (the 3D reference model)",
    )
    parser.add_argument(
        "--precision", choices=PRECISION_CHOICES, help="torch (default: fp16 on a GPU with the fast engine, else fp32)"
    )
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when torch sees a GPU, else cpu)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the model (default: all cores)")


def _sampling_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sampling",
        choices=SAMPLING_MODES,
        help="test clip offsets: 0.x (mmaction2 0.x, the seed's) or 1.x (mmaction2 >= 1.0.0rc2) "
        "(default: the checkpoint's, recognised by its file name; else 0.x)",
    )


def _weights(args: argparse.Namespace):
    """The checkpoint's description with --sampling applied; says once (stderr) what a given file was taken for."""
    from .model.weights import choose_weights

    weights, note = choose_weights(args.checkpoint, args.sampling)
    if note:
        print(f"i3d: {note}{'' if args.sampling is None else f' (--sampling {args.sampling})'}", file=sys.stderr)
    return weights


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict the action in videos or rawframe directories",
        epilog=PREDICT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("videos", nargs="+", help="video files or rawframe directories (img_00001.jpg, ...)")
    _model_arguments(predict, "mmaction2 .pth path or http(s) URL (default: the official checkpoint)")
    predict.add_argument("--protocol", default="seed", choices=list(PROTOCOLS), help="view protocol (default: seed)")
    _sampling_argument(predict)
    predict.add_argument("--topk", type=int, default=5, help="classes to show per video (default: 5)")
    predict.add_argument("--label-map", help="class names, one per line (default: the Kinetics-400 names)")
    predict.add_argument("--fusion", default="prob", choices=FUSIONS, help="clip fusion (default: prob)")
    predict.add_argument("--decoder", default=DEFAULT_DECODER, choices=list(DECODERS), help="video decoder")
    predict.add_argument("--json", action="store_true", help="one JSON object per line per video")
    predict.add_argument(
        "--annotate", metavar="OUT.mp4", help="write the video with each clip's and the video's top-3 drawn on it"
    )
    predict.add_argument(
        "--lossless", action="store_true", help="with --annotate: lossless RGB H.264 (exact pixels, few players)"
    )
    predict.set_defaults(run=run_predict)


def _add_demo(commands) -> None:
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


def _add_export(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export to ONNX and verify it against PyTorch on a real video",
        epilog="examples:\n  i3d export --checkpoint i3d_nl.pth --output i3d.onnx\n"
        "  i3d export --checkpoint i3d_nl.pth --output i3d_atc.onnx --opset 11 --input float32 --simplify  # for ATC\n"
        "  i3d export --checkpoint i3d_nl.pth --output i3d_dyn.onnx --dynamic-batch --output-kind video-probs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--checkpoint", help="mmaction2 .pth path or URL (default: the official checkpoint)")
    export.add_argument("--output", required=True, help="the .onnx file to write")
    export.add_argument(
        "--shape",
        type=int,
        nargs=6,
        default=list(DEFAULT_SHAPE),
        metavar=("B", "V", "C", "T", "H", "W"),
        help="input shape (default: 1 10 3 32 256 256)",
    )
    export.add_argument("--dynamic-batch", action="store_true", help="make B a free dimension")
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


def _add_bench(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure throughput (videos/s) like ais_bench: pure inference, or end to end with --e2e",
        epilog="examples:\n  i3d bench --backend torch --batch-sizes 1 --iters 3\n"
        "  i3d bench --backend openvino --model i3d_dyn.onnx --batch-sizes 1,4 --json bench.json\n"
        "  i3d bench --backend onnxruntime --model i3d.onnx --e2e val_list_videos.txt --root videos_val\n"
        "  i3d bench --e2e val_list_videos.txt --root videos_val --decode-only --workers 2   # no model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_arguments(bench, "torch: a checkpoint (default: random weights; speed does not depend on them)")
    bench.add_argument("--batch-sizes", help="videos per call, comma-separated (default: 8 on a GPU, else 1)")
    bench.add_argument("--warmup", type=int, default=2, help="untimed calls first (default: 2; --e2e: 1 batch)")
    bench.add_argument("--iters", type=int, default=10, help="timed calls (default: 10)")
    bench.add_argument("--seconds", type=float, help="time for at least this long instead of --iters")
    bench.add_argument(
        "--shape",
        type=int,
        nargs=5,
        metavar=("V", "C", "T", "H", "W"),
        help="torch: views of one video (default: 10 3 32 256 256); ONNX models have their own",
    )
    bench.add_argument("--e2e", metavar="LIST", help="time the evaluation's whole pipeline over this list's videos")
    bench.add_argument("--root", help="with --e2e: the directory the list's paths are relative to")
    bench.add_argument("--protocol", default="seed", choices=list(PROTOCOLS), help="with --e2e (default: seed)")
    _sampling_argument(bench)
    bench.add_argument("--max-videos", type=int, help="with --e2e: stop after this many videos")
    bench.add_argument("--workers", type=int, help="with --e2e: decode processes (default: cores - 1 on a GPU, else 1)")
    bench.add_argument(
        "--decoder",
        choices=["cpu", *GPU_DECODERS],
        default="cpu",
        help="with --e2e: decode on the CPU workers (default) or on the GPU (nvdec: videos, nvjpeg: rawframes)",
    )
    bench.add_argument("--gpu-decoders", type=int, default=8, help="with --decoder nvdec/nvjpeg: decode threads")
    bench.add_argument(
        "--decode-only",
        action="store_true",
        help="with --e2e: no model; the decode ceiling (workers sending nothing back), then the data path "
        "(decode, shared memory, batches, and the copy to --device when it is a GPU)",
    )
    bench.add_argument("--json", dest="json_file", help="also write the figures, device and versions here")
    bench.set_defaults(run=run_bench)


def _add_eval(commands) -> None:
    evaluate = commands.add_parser(
        "eval",
        help="evaluate a list of videos or rawframes: accuracy, result.json, resumable and shardable",
        epilog="examples:\n"
        "  i3d eval --list val_list_rawframes.txt --root rawframes_val --checkpoint i3d_nl.pth --out-dir runs/val\n"
        "  i3d eval --list val_list_videos.txt --root videos_val --backend openvino --model i3d.onnx \\\n"
        "      --out-dir runs/ov --out result.json --workers 2\n"
        "  i3d eval ... --out-dir runs/val --resume              # continue a killed run\n"
        "  i3d eval ... --shard 0/2 --out-dir runs/s0; i3d eval ... --shard 1/2 --out-dir runs/s1\n"
        "  i3d merge runs/s0 runs/s1 --out-dir runs/val\n"
        "  torchrun --nproc-per-node 8 $(which i3d) eval ... --device cuda --out-dir runs/val\n"
        "  i3d eval ... --cluster ray --ray-address auto --workers 480 --out-dir runs/val   # a Ray cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--list", required=True, help="list file (rawframes or videos format)")
    evaluate.add_argument("--root", required=True, help="directory the list's paths are relative to")
    evaluate.add_argument("--format", choices=LIST_FORMATS, help="list format (default: guessed from the first line)")
    _model_arguments(evaluate, "torch: .pth path or URL (default: the official checkpoint)")
    evaluate.add_argument("--protocol", default="seed", choices=list(PROTOCOLS))
    _sampling_argument(evaluate)
    evaluate.add_argument("--fusion", default="prob", choices=FUSIONS)
    evaluate.add_argument("--batch-size", type=int, help="videos per model call (default: 8 on a GPU, else 1)")
    evaluate.add_argument(
        "--workers", type=int, help="decode processes (default: cores - 1 on a GPU, else 1; 0: no processes)"
    )
    evaluate.add_argument(
        "--decoder",
        default=DEFAULT_DECODER,
        choices=[*DECODERS, *GPU_DECODERS],
        help="opencv, pyav: CPU workers; nvdec (video files), nvjpeg (rawframes): on the GPU, extra [gpu]. nvdec's "
        "frames equal opencv's bit for bit; nvjpeg's pixels differ from OpenCV's libjpeg by a few levels (not "
        "bit-identical: see benchmarks/RESULTS.md)",
    )
    evaluate.add_argument("--gpu-decoders", type=int, default=8, help="with nvdec/nvjpeg: decode threads (default 8)")
    evaluate.add_argument(
        "--cpu-share",
        type=float,
        default=0.0,
        help="with nvdec/nvjpeg: the fraction of the list the --workers decode on the CPU beside the GPU "
        "(a fixed assignment, kept on --resume; default 0)",
    )
    evaluate.add_argument(
        "--cluster",
        choices=["local", "ray"],
        default="local",
        help="ray: decode tasks and model actors on a Ray cluster (extra [ray]; --workers: concurrent decode tasks)",
    )
    evaluate.add_argument("--ray-address", help="with --cluster ray: join this cluster (default: start one here)")
    evaluate.add_argument("--gpus", type=int, help="with --cluster ray: model actors, one GPU each (default: all)")
    evaluate.add_argument("--label-map", help="class names, one per line (default: Kinetics-400)")
    evaluate.add_argument("--out", help="also write the seed's result.json here")
    evaluate.add_argument("--out-dir", required=True, help="run directory: results, metrics, plots")
    evaluate.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    evaluate.add_argument("--shard", help="I/N: evaluate the I-th of N disjoint parts (then i3d merge)")
    evaluate.add_argument("--strict", action="store_true", help="stop at the first unreadable video")
    evaluate.add_argument("--timeout", type=float, default=600, help="seconds one video's decoding may take")
    evaluate.set_defaults(run=run_eval)
    merge = commands.add_parser("merge", help="combine the run directories of i3d eval --shard into one result")
    merge.add_argument("runs", nargs="+", help="shard run directories")
    merge.add_argument("--out-dir", required=True, help="where to write the merged results")
    merge.add_argument("--out", help="also write the seed's result.json here")
    merge.add_argument("--label-map", help="class names, one per line (default: Kinetics-400)")
    merge.set_defaults(run=run_merge)


def _add_dataset(commands) -> None:
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
    lists.add_argument("--out", required=True, help="output directory")
    lists.add_argument("--ext", default=",".join(VIDEO_EXTENSIONS), help="video extensions (comma-separated)")
    lists.set_defaults(run=run_lists)

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
    extract.add_argument("--ext", default="mp4", help="video extensions, comma-separated (default: mp4)")
    extract.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    extract.add_argument("--quality", type=int, default=95, help="JPEG quality (default: 95)")
    extract.add_argument("--timeout", type=float, default=600, help="seconds per video before giving up (600)")
    extract.add_argument("--ignore-disk-check", action="store_true", help="go on even if the disk looks too small")
    extract.set_defaults(run=run_extract)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="i3d", description="I3D non-local video action recognition, offline.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_predict, _add_demo, _add_export, _add_quantize, _add_bench, _add_eval, _add_dataset):
        add(commands)
    for command in commands.choices.values():  # --debug is accepted after the command too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def apply_machine_defaults(args: argparse.Namespace) -> None:
    """Fill in what the user left unset to fit this machine, and say once what was chosen (stderr).

    With a CUDA GPU (torch backend): the GPU, fp16 (the fast engine; eager stays fp32), batch 8 and a decode
    process per core but one. Without: the CPU, fp32, batch 1, one decode process, as always.
    """
    torch_backend = args.backend == "torch"
    detected = args.device is None and torch_backend and _cuda_available()
    if args.device is None:
        args.device = "cuda" if detected else "cpu"
    gpu = args.device.startswith("cuda")
    chosen = []
    if args.precision is None:
        args.precision = "fp16" if gpu and torch_backend and args.engine != "eager" else "fp32"
        chosen += [f"{args.engine or 'fast'} engine, {args.precision}"] if gpu and torch_backend else []
    for name, on_gpu, on_cpu in (("batch_size", 8, 1), ("batch_sizes", "8", "1"), ("workers", _gpu_workers(), 1)):
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, on_gpu if gpu else on_cpu)
            chosen += [f"{name.replace('_', ' ')} {on_gpu}"] if gpu else []
    if detected or (chosen and _cuda_available()):  # an explicit --device cuda without CUDA fails in a moment
        settings = ", ".join([f"device {args.device}", *chosen])
        print(f"i3d: for the GPU: {settings} (--device cpu, --precision fp32 ... to change)", file=sys.stderr)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpu_workers() -> int:
    """A decode process per core but one (the model's thread), shared among torchrun's processes on this node."""
    import os

    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, ((os.cpu_count() or 2) - per_node) // per_node)


def run_predict(args: argparse.Namespace) -> int:
    from .predict import Predictor

    if args.topk < 1:
        raise I3DError(f"--topk must be >= 1, got {args.topk}")
    if args.annotate and len(args.videos) != 1:
        raise I3DError(f"--annotate writes one video; got {len(args.videos)} inputs")
    apply_machine_defaults(args)
    try:
        predictor = Predictor.create(
            args.checkpoint,
            backend=args.backend,
            model=args.model,
            device=args.device,
            threads=args.threads or None,
            label_map=args.label_map,
            engine=args.engine,
            precision=args.precision,
            fusion=args.fusion,
            decoder=args.decoder,
            weights=_weights(args),
        )
    except DownloadError as e:
        if args.checkpoint:
            raise
        raise DownloadError(f"{e}, or pass --checkpoint PATH") from e
    if args.annotate:
        from .annotate import annotate

        try:
            result = annotate(predictor, args.videos[0], args.annotate, args.protocol, args.lossless)
        except VideoError as e:  # like a bad video without --annotate: one line, exit code 1
            if args.debug:
                raise
            print(f"i3d: {e}", file=sys.stderr)
            return 1
        width, height = result.size
        _print_prediction(args.videos[0], result.prediction)
        print(f"annotated: {result.path} ({result.frames} frames, {width}x{height})")
        return 0
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


def _print_prediction(video: str, prediction) -> None:
    print(f"{video}  ({prediction.num_frames} frames, protocol {prediction.protocol})")
    for c in prediction.topk:
        print(f"  {c.prob:7.4f}  {c.label}")
    sys.stdout.flush()


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    demo(args.dir, args.checkpoint, log=lambda line: print(line, flush=True))
    return 0


def run_samples(args: argparse.Namespace) -> int:
    from .prepare.sample_videos import sample_videos

    for path in sample_videos():
        print(path)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from .export.onnx import ExportOptions, example_input, export_onnx, verify_onnx
    from .model.checkpoint import load_model
    from .model.weights import choose_weights

    weights, _ = choose_weights(args.checkpoint)
    options = ExportOptions(
        shape=tuple(args.shape),
        dynamic_batch=args.dynamic_batch,
        opset=args.opset,
        input_kind=args.input_kind,
        output_kind=args.output_kind,
        simplify=args.simplify,
        fp16=args.fp16,
    )
    recognizer = load_model(args.checkpoint, weights)
    example = None if args.no_verify else example_input(options, weights.preprocessing, args.verify_video)
    path = export_onnx(recognizer, args.output, options)
    print(
        f"wrote {path} (input video {list(options.shape)} {options.input_kind}, output {options.output_name}, "
        f"opset {options.opset}{', dynamic batch' if options.dynamic_batch else ''}"
        f"{', fp16' if options.fp16 else ''}{', simplified' if options.simplify else ''})"
    )
    if example is None:
        print("not verified (--no-verify)")
        return 0
    result = verify_onnx(path, recognizer, options, example)
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
    from .export.int8 import quantize_openvino
    from .prepare.sample_videos import sample_videos

    calibration = args.calibration
    if args.calibration_list:
        from .data.datasets import read_list

        if not args.root:
            raise I3DError("--calibration-list needs --root DIR")
        _, entries = read_list(args.calibration_list)
        calibration = [f"{args.root}/{e.video_id}" for e in entries[: args.max_videos]]
    calibration = calibration or [str(p) for p in sample_videos()]
    report = quantize_openvino(args.model, args.output, calibration, args.check, threads=args.threads or None)
    print(f"wrote {args.output} (int8, calibrated on {report.calibration_videos} videos)")
    print(
        f"against fp32 on {report.videos} videos: max rel error of clip logits {report.max_rel:.3g}, "
        f"clip top-1 agreement {report.clip_top1_agreement:.4f}, video top-1 agreement "
        f"{report.video_top1_agreement:.4f} (also in {args.output.removesuffix('.xml')}.json)"
    )
    return 0


def run_bench(args: argparse.Namespace) -> int:
    import json as json_module

    from .bench import HEADER, bench_decode_ceiling, bench_e2e, bench_inference, to_json
    from .runtime import BackendSpec, make_backend

    apply_machine_defaults(args)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if args.decode_only and not args.e2e:
        raise I3DError("--decode-only needs --e2e LIST --root DIR")
    weights = _weights(args)
    backend = None
    if not args.decode_only:
        random_weights = args.backend == "torch" and not args.checkpoint
        spec = BackendSpec(
            args.backend,
            args.checkpoint,
            args.model,
            args.device,
            args.threads or None,
            random_weights,
            args.engine,
            args.precision,
        )
        backend = make_backend(spec, weights)
        if random_weights:
            print("torch backend with random weights (timing only; pass --checkpoint for real ones)", file=sys.stderr)
    view_shape = _bench_view_shape(args, backend, batch_sizes)
    dataset = None
    if args.e2e:
        from .data.datasets import VideoDataset

        if not args.root:
            raise I3DError("--e2e needs --root DIR")
        dataset = VideoDataset(args.e2e, args.root, protocol=args.protocol, preprocessing=weights.preprocessing)
    gpu_decoding = None
    if args.decoder != "cpu":
        if dataset is None:
            raise I3DError("--decoder is for --e2e")
        from .data.gpu.decode import check_gpu_decoder
        from .transport.gpu import GpuDecoding
        from .transport.stream import gpu_decoding_device

        check_gpu_decoder(args.decoder, dataset.list_format)
        gpu_decoding = GpuDecoding(args.decoder, args.gpu_decoders)
    records = []
    print(HEADER)
    if args.decode_only:
        device = gpu_decoding_device(args.decoder) if gpu_decoding else None
        records.append(bench_decode_ceiling(dataset, args.workers, args.max_videos, True, gpu_decoding, device))
        print(records[-1].row(), flush=True)
    for batch in batch_sizes:
        if dataset is not None:
            warmup = min(args.warmup, 1)
            record = bench_e2e(
                backend, dataset, batch, args.workers, warmup, args.max_videos, args.device, True, gpu_decoding
            )
        else:
            record = bench_inference(backend, batch, view_shape, args.warmup, args.iters, args.seconds)
        records.append(record)
        print(record.row(), flush=True)
        if args.decode_only:
            print(f"data path / decode ceiling: {record.videos_per_s / records[0].videos_per_s:.3f}", flush=True)
    if args.json_file:
        with open(args.json_file, "w", encoding="utf-8") as f:
            json_module.dump(to_json(records), f, indent=1)
    return 0


def _bench_view_shape(args: argparse.Namespace, backend, batch_sizes: list[int]) -> tuple[int, ...] | None:
    """The views of one video for ``bench_inference``; a model's own, or --shape for torch."""
    if backend is None:
        return None
    if args.backend == "torch":
        return tuple(args.shape) if args.shape else (10, 3, 32, 256, 256)
    if args.shape:
        raise I3DError("--shape is for the torch backend; an ONNX model has its own input shape")
    if backend.batch and any(b != backend.batch for b in batch_sizes):
        raise I3DError(
            f"{args.model} has a static batch of {backend.batch}; use --batch-sizes {backend.batch} "
            "or export with --dynamic-batch"
        )
    return (backend.views_per_video, *backend.view_shape)


def run_eval(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from .evaluate.runner import EvalConfig, RunOptions, evaluate

    apply_machine_defaults(args)
    shard, distributed = _shard(args.shard)
    device = args.device
    out_dir = Path(args.out_dir)
    if distributed:
        local_rank = int(os.environ.get("LOCAL_RANK", shard[0]))
        device = f"cuda:{local_rank}" if device == "cuda" else device
        out_dir = out_dir / f"rank{shard[0]}"
    if args.batch_size < 1:
        raise I3DError(f"--batch-size must be >= 1, got {args.batch_size}")
    config = EvalConfig(
        list_file=str(Path(args.list).resolve()),
        root=str(Path(args.root).resolve()),
        list_format=args.format,
        backend=args.backend,
        checkpoint=args.checkpoint,
        model=str(Path(args.model).resolve()) if args.model else None,
        protocol=args.protocol,
        fusion=args.fusion,
        batch_size=args.batch_size,
        decoder=args.decoder,
        cpu_share=args.cpu_share,
        label_map=args.label_map,
        shard=shard,
        engine=args.engine,
        precision=args.precision,
    )
    if not 0 <= args.cpu_share <= 1:
        raise I3DError(f"--cpu-share must be between 0 and 1, got {args.cpu_share}")
    ray = None
    if args.cluster == "ray":
        from .transport.ray_data import RayOptions

        ray = RayOptions(args.ray_address, args.gpus)
    elif args.ray_address or args.gpus is not None:
        raise I3DError("--ray-address and --gpus are for --cluster ray")
    options = RunOptions(
        device=device,
        threads=args.threads or None,
        workers=args.workers,
        gpu_decoders=args.gpu_decoders,
        ray=ray,
        timeout=args.timeout,
        strict=args.strict,
    )
    record = evaluate(config, out_dir, options, resume=args.resume, weights=_weights(args))
    if distributed:
        record = _merge_ranks(args, shard, record)
        if record is None:
            return 0
    return _report_run(record, args.out)


def _shard(text: str | None) -> tuple[tuple[int, int], bool]:
    """``(I, N)`` from ``--shard I/N``, else from torchrun's RANK/WORLD_SIZE; and whether it came from torchrun."""
    import os

    if text:
        try:
            index, total = (int(v) for v in text.split("/"))
        except ValueError:
            raise I3DError(f"--shard must look like 0/4, got {text!r}") from None
        if not 0 <= index < total:
            raise I3DError(f"--shard {text}: need 0 <= I < N")
        return (index, total), False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        return (int(os.environ["RANK"]), world), True
    return (0, 1), False


def _merge_ranks(args: argparse.Namespace, shard: tuple[int, int], record):
    """Under torchrun: wait for every rank (gloo barrier), then rank 0 merges the rank directories."""
    from pathlib import Path

    import torch.distributed as dist

    from .evaluate.outputs import merge_runs
    from .model.weights import read_labels

    dist.init_process_group("gloo")
    try:
        dist.barrier()
        if shard[0] != 0:
            return None
        runs = [Path(args.out_dir) / f"rank{r}" for r in range(shard[1])]
        return merge_runs(runs, args.out_dir, read_labels(args.label_map))
    finally:
        dist.destroy_process_group()


def _report_run(record, out: str | None) -> int:
    import shutil

    if out:
        shutil.copyfile(record.out_dir / "result.json", out)
    counts = record.metrics["counts"]
    print(f"{counts['listed']} videos, {counts['failed']} unreadable; results in {record.out_dir}")
    for line in record.summary_lines():
        print(line)
    print(f"report: {record.report.resolve().as_uri()}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from .evaluate.outputs import merge_runs
    from .model.weights import read_labels

    return _report_run(merge_runs(args.runs, args.out_dir, read_labels(args.label_map)), args.out)


def run_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .model.download import download
    from .model.weights import DEFAULT_WEIGHTS
    from .prepare.annotations import KINETICS400_ANNOTATIONS

    urls = args.url or (KINETICS400_ANNOTATIONS if args.what == "annotations" else (DEFAULT_WEIGHTS.url,))
    for url in urls:
        print(download(url, Path(args.to) if args.to else None))
    return 0


def run_lists(args: argparse.Namespace) -> int:
    from .prepare.annotations import make_lists

    result = make_lists(args.train, args.split, args.out, args.videos, args.rawframes, _extensions(args.ext))
    print(f"label map: {result.label_map}")
    for kind, path in result.lists.items():
        print(f"{kind} list: {path}: {result.reports[kind].summary()}")
    print(f"report: {result.report_file}")
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from .prepare.extract import ExtractOptions, extract_all

    size = None
    if not args.short_side:
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise I3DError(f"--size must look like 256x256, got {args.size!r}") from None
        size = (width, height)
    if not 1 <= args.quality <= 100:
        raise I3DError(f"--quality must be 1..100, got {args.quality}")
    options = ExtractOptions(size=size, short_side=args.short_side, quality=args.quality, timeout=args.timeout)
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


def _extensions(text: str) -> tuple[str, ...]:
    return tuple(e.strip().lstrip(".").lower() for e in text.split(",") if e.strip())


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
