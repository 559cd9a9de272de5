"""``i3d eval`` and ``i3d merge``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..data.datasets import LIST_FORMATS
from ..data.decode import DECODERS, DEFAULT_DECODER, GPU_DECODERS
from ..data.transforms import PROTOCOLS
from ..errors import I3DError
from ..evaluate.metrics import FUSIONS
from ._common import (
    chosen_weights,
    flow_argument,
    flow_method,
    model_arguments,
    placement,
    ray_options,
    sampling_argument,
)


def add_commands(commands) -> None:
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
    model_arguments(evaluate, "torch: .pth path or URL (default: the official checkpoint)")
    evaluate.add_argument("--protocol", choices=list(PROTOCOLS), help="(default: the checkpoint's)")
    flow_argument(evaluate, "accuracy of RGB alone, flow alone and the two fused (summed logits) from one pass")
    sampling_argument(evaluate)
    evaluate.add_argument("--fusion", default="prob", choices=FUSIONS)
    evaluate.add_argument("--batch-size", type=int, help="videos per model call (default: 8 on a GPU, else 1)")
    evaluate.add_argument(
        "--workers", type=int, help="decode processes (default: cores - 1 on a GPU, else 1; 0: no processes)"
    )
    _execution_arguments(evaluate)
    evaluate.set_defaults(run=run_eval)
    merge = commands.add_parser("merge", help="combine the run directories of i3d eval --shard into one result")
    merge.add_argument("runs", nargs="+", help="shard run directories")
    merge.add_argument("--out-dir", required=True, help="where to write the merged results")
    merge.add_argument("--out", help="also write the seed's result.json here")
    merge.add_argument("--label-map", "--labels", help="class names, one per line (default: the checkpoint's)")
    merge.set_defaults(run=run_merge)


def _execution_arguments(evaluate: argparse.ArgumentParser) -> None:
    """How an evaluation decodes, where it runs and what it keeps."""
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
    evaluate.add_argument("--label-map", "--labels", help="class names, one per line (default: the checkpoint's)")
    evaluate.add_argument("--out", help="also write the seed's result.json here")
    evaluate.add_argument("--out-dir", required=True, help="run directory: results, metrics, plots")
    evaluate.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    evaluate.add_argument("--shard", help="I/N: evaluate the I-th of N disjoint parts (then i3d merge)")
    evaluate.add_argument("--strict", action="store_true", help="stop at the first unreadable video")
    evaluate.add_argument("--timeout", type=float, default=600, help="seconds one video's decoding may take")


def run_eval(args: argparse.Namespace) -> int:
    from ..evaluate.distributed import merge_ranks, parse_shard
    from ..evaluate.runner import EvalConfig, RunOptions, evaluate
    from ..model.weights import read_labels

    where = placement(args, batch_size=args.batch_size)
    weights = chosen_weights(args)
    shard = parse_shard(args.shard)
    flow = flow_method(args, where.device, wanted=bool(args.flow_checkpoint))
    if where.batch_size < 1:
        raise I3DError(f"--batch-size must be >= 1, got {where.batch_size}")
    config = EvalConfig(
        list_file=str(Path(args.list).resolve()),
        root=str(Path(args.root).resolve()),
        list_format=args.format,
        backend=args.backend,
        checkpoint=args.checkpoint,
        flow_checkpoint=args.flow_checkpoint,
        flow=None if flow is None else flow.implementation,
        model=str(Path(args.model).resolve()) if args.model else None,
        protocol=args.protocol,
        fusion=args.fusion,
        batch_size=1 if weights.preprocessing.whole_video else where.batch_size,  # a video is one input of its length
        decoder=args.decoder,
        cpu_share=args.cpu_share,
        label_map=args.label_map,
        shard=(shard.index, shard.total),
        engine=args.engine,
        precision=where.precision,
    )
    if not 0 <= args.cpu_share <= 1:
        raise I3DError(f"--cpu-share must be between 0 and 1, got {args.cpu_share}")
    options = RunOptions(
        device=shard.device(where.device),
        threads=args.threads or None,
        workers=where.workers,
        gpu_decoders=args.gpu_decoders,
        ray=ray_options(args),
        timeout=args.timeout,
        strict=args.strict,
    )
    record = evaluate(config, shard.out_dir(args.out_dir), options, resume=args.resume, weights=weights)
    if shard.torchrun:
        record = merge_ranks(shard, args.out_dir, read_labels(args.label_map, weights))
        if record is None:
            return 0
    return _report_run(record, args.out)


def _report_run(record, out: str | None) -> int:
    if out:
        shutil.copyfile(record.out_dir / "result.json", out)
    counts = record.metrics.counts
    print(f"{counts.listed} videos, {counts.failed} unreadable; results in {record.out_dir}")
    for line in record.summary_lines():
        print(line)
    print(f"report: {record.report.resolve().as_uri()}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from ..evaluate.outputs import merge_runs
    from ..model.weights import read_labels

    return _report_run(merge_runs(args.runs, args.out_dir, read_labels(args.label_map)), args.out)
