"""``i3d bench``: throughput, like ais_bench (pure inference), or of the evaluation's whole pipeline."""

from __future__ import annotations

import argparse
import json
import sys

from ..data.decode import GPU_DECODERS
from ..data.transforms import PROTOCOLS
from ..errors import I3DError
from ._common import chosen_weights, model_arguments, placement, sampling_argument


def add_commands(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure throughput (videos/s) like ais_bench: pure inference, or end to end with --e2e",
        epilog="examples:\n  i3d bench --backend torch --batch-sizes 1 --iters 3\n"
        "  i3d bench --backend openvino --model i3d_dyn.onnx --batch-sizes 1,4 --json bench.json\n"
        "  i3d bench --backend onnxruntime --model i3d.onnx --e2e val_list_videos.txt --root videos_val\n"
        "  i3d bench --e2e val_list_videos.txt --root videos_val --decode-only --workers 2   # no model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model_arguments(bench, "torch: a checkpoint (default: random weights; speed does not depend on them)")
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
    bench.add_argument("--protocol", choices=list(PROTOCOLS), help="with --e2e (default: the checkpoint's)")
    sampling_argument(bench)
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


def run_bench(args: argparse.Namespace) -> int:
    from ..bench import BenchPlan, run_bench, to_json
    from ..runtime import BackendSpec

    sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()] if args.batch_sizes else None
    where = placement(args, batch_size=sizes[0] if sizes else None)
    if args.decode_only and not args.e2e:
        raise I3DError("--decode-only needs --e2e LIST --root DIR")
    weights = chosen_weights(args)
    spec = None
    if not args.decode_only:
        random_weights = args.backend == "torch" and not args.checkpoint
        spec = BackendSpec(
            backend=args.backend,
            checkpoint=args.checkpoint,
            model=args.model,
            device=where.device,
            threads=args.threads or None,
            random_weights=random_weights,
            engine=args.engine,
            precision=where.precision,
        )
        if random_weights:
            print("torch backend with random weights (timing only; pass --checkpoint for real ones)", file=sys.stderr)
    dataset = _e2e_dataset(args, weights)
    plan = BenchPlan(
        spec,
        weights,
        tuple(sizes or [where.batch_size]),
        warmup=args.warmup,
        iters=args.iters,
        seconds=args.seconds,
        shape=tuple(args.shape) if args.shape else None,
        e2e=dataset,
        max_videos=args.max_videos,
        workers=where.workers,
        gpu_decoding=_gpu_decoding(args, dataset),
        device=where.device,
    )
    records = run_bench(plan, log=lambda line: print(line, flush=True))
    if args.json_file:
        with open(args.json_file, "w", encoding="utf-8") as f:
            json.dump(to_json(records), f, indent=1)
    return 0


def _e2e_dataset(args: argparse.Namespace, weights):
    if not args.e2e:
        if args.decoder != "cpu":
            raise I3DError("--decoder is for --e2e")
        return None
    from ..data.datasets import VideoDataset

    if not args.root:
        raise I3DError("--e2e needs --root DIR")
    return VideoDataset(args.e2e, args.root, protocol=args.protocol, preprocessing=weights.preprocessing)


def _gpu_decoding(args: argparse.Namespace, dataset):
    if args.decoder == "cpu":
        return None
    from ..data.gpu.decode import check_gpu_decoder
    from ..transport.decoding import GpuDecoding

    check_gpu_decoder(args.decoder, dataset.list_format)
    return GpuDecoding(args.decoder, args.gpu_decoders)
