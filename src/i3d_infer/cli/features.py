"""``i3d features``: per-clip features of videos of any length: mmaction2's (2048-d, exact to its feature extraction)
or the Inception I3D's windows (1024-d)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..data.datasets import LIST_FORMATS, read_list
from ..data.decode import DECODERS, DEFAULT_DECODER, GPU_DECODERS
from ..data.sampling import TAILS, DenseClips, windows
from ..data.transforms import PROTOCOLS
from ..errors import I3DError
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
    features = commands.add_parser(
        "features",
        help="per-clip features (.npy per video) of videos of any length: dense clips, test clips or Inception windows",
        epilog="examples:\n"
        "  i3d features v.mp4 --checkpoint rgb_imagenet/model.ckpt --window 16 --stride 4 --out-dir f  # (w, 1024)\n"
        "  i3d features v.mp4 --checkpoint rgb_imagenet.pt --fps 25 --protocol fivecrop --out-dir f  # (w, 5, 1024)\n"
        "  i3d features a.mp4 b.mp4 --checkpoint i3d_nl.pth --out-dir feats       # feats/a.npy: (clips, 2048)\n"
        "  i3d features --list val_list_videos.txt --root videos_val --out-dir feats --workers 2\n"
        "  i3d features long.mp4 --out-dir feats --clip-interval 32 --scores     # + feats/long.scores.npy\n"
        "  i3d features a.mp4 --out-dir feats --clips test --protocol threecrop --views mean\n"
        "  i3d features --list L --root R --out-dir feats --shard 0/2            # and 1/2 elsewhere",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    features.add_argument("videos", nargs="*", help="video files or rawframe directories (or --list)")
    features.add_argument("--list", help="list file (videos or rawframes format); paths relative to --root")
    features.add_argument("--root", help="directory the list's paths are relative to")
    features.add_argument("--format", choices=LIST_FORMATS, help="list format (default: guessed)")
    features.add_argument("--out-dir", required=True, help="<name>.npy per video, index.jsonl, features.json")
    model_arguments(features, "torch: .pth path or URL (default: the official checkpoint)")
    features.add_argument(
        "--clips",
        default="dense",
        choices=["dense", "test"],
        help="dense: a clip every --clip-interval frames (mmaction2 UntrimmedSampleFrames); test: the evaluation's "
        "test clips (+ <name>.mean.npy)",
    )
    features.add_argument(
        "--clip-interval", "--stride", type=int, help="dense: frames between clips (default: 16; Inception: --window)"
    )
    features.add_argument(
        "--window", type=int, help="Inception models: frames per window (default 64); windows start every --stride"
    )
    features.add_argument(
        "--fps", type=float, help="resample every video to this frame rate by timestamp first (DeepMind: 25)"
    )
    flow_argument(
        features,
        "each window's flow features after its RGB ones (2048-d, the TAL releases' order; window k: frames and "
        "fields [kS, kS + L)); --scores fuses the two as DeepMind does",
    )
    features.add_argument("--tail", choices=TAILS, default="drop", help="Inception windows past the end: drop or pad")
    features.add_argument("--protocol", default="centercrop", choices=list(PROTOCOLS))
    features.add_argument(
        "--views", default="each", choices=["each", "mean"], help="threecrop: a feature per crop, or their mean"
    )
    sampling_argument(features)
    features.add_argument("--half", action="store_true", help="write float16 features (default float32)")
    features.add_argument("--scores", action="store_true", help="also <name>.scores.npy: each clip's probabilities")
    features.add_argument(
        "--batch-size", type=int, help="clips per model call, across videos (default: 8 on a GPU, else 1)"
    )
    _execution_arguments(features)
    features.add_argument("--shard", help="I/N: extract the I-th of N disjoint parts of the list")
    features.add_argument("--timeout", type=float, default=600, help="seconds a video may go without a clip")
    features.add_argument("--label-map", "--labels", help="class names, one per line (default: the checkpoint's)")
    features.add_argument("--no-progress", action="store_true", help="no progress bar")
    features.set_defaults(run=run_features)


def _execution_arguments(parser: argparse.ArgumentParser) -> None:
    """How an extraction decodes and where: workers, the transport, the decoders, a Ray cluster."""
    parser.add_argument("--workers", type=int, help="decode processes (default: cores - 1 on a GPU, else 1; 0: none)")
    parser.add_argument(
        "--cluster", choices=["local", "ray"], default="local",
        help="ray: the decoding as Ray Data tasks on a Ray cluster's CPUs (extra [ray]; --workers: concurrent "
        "tasks), the model in this process",
    )  # fmt: skip
    parser.add_argument("--ray-address", help="with --cluster ray: join this cluster (default: start one here)")
    parser.add_argument(
        "--transport", choices=["slots", "pipe"], default="slots",
        help="how the workers' clips reach the model: shared-memory slots (the pipe for a chunk too large for one: "
        "full chunks of frames wider than 16:9), or "
        "all through the pipe (for comparison)",
    )  # fmt: skip
    parser.add_argument(
        "--decoder", default=DEFAULT_DECODER, choices=[*DECODERS, *GPU_DECODERS],
        help="opencv, pyav: CPU workers; nvdec (video files), nvjpeg (rawframes): threads on the GPU, extra [gpu] "
        "(as i3d eval's: nvdec's frames are opencv's; what they cannot take, the CPU reads, recorded in the index)",
    )  # fmt: skip
    parser.add_argument("--gpu-decoders", type=int, default=8, help="with nvdec/nvjpeg: decode threads (default 8)")


def inputs(args: argparse.Namespace) -> list[tuple]:
    """``(path, name[, num_frames, offset])`` of every video asked for: a list's lines, or the arguments (named by
    their file name)."""
    if args.list and args.videos:
        raise I3DError("give video arguments or --list, not both")
    if args.list:
        if not args.root:
            raise I3DError("--list needs --root (the directory its paths are relative to)")
        _, entries = read_list(args.list, args.format)
        return [(Path(args.root) / e.video_id, e.video_id, e.total_frames, e.offset) for e in entries]
    if not args.videos:
        raise I3DError("give video files (or --list LIST --root ROOT)")
    return [(Path(v), Path(v).name) for v in args.videos]


def run_features(args: argparse.Namespace) -> int:
    from ..evaluate.distributed import parse_shard
    from ..features.plan import FeaturePlan, plan_outputs

    tasks = plan_outputs(inputs(args), args.out_dir)
    shard = parse_shard(args.shard)
    weights = chosen_weights(args)
    where = placement(args, batch_size=args.batch_size)
    plan = FeaturePlan(
        clips=args.clips,
        dense=dense_clips(args, weights),
        protocol=args.protocol,
        views=args.views,
        dtype="float16" if args.half else "float32",
        scores=args.scores,
        batch_size=where.batch_size,
        fps=args.fps,
        flow=flow_method(args, shard.device(where.device), wanted=bool(args.flow_checkpoint)),
    )
    backend, head = feature_backend(args, weights, device=shard.device(where.device), precision=where.precision)
    summary = _extract(args, plan, tasks[shard.index :: shard.total], backend=backend, head=head, weights=weights,
                       where=where, shard=shard)  # fmt: skip
    if shard.torchrun:  # every rank done, then rank 0 folds the parts into index.jsonl (nothing left to extract)
        _fold_ranks(Path(args.out_dir), plan=plan, weights=weights, rank=shard.index)
    print(json.dumps({"out_dir": args.out_dir, "extracted": summary.done, "skipped": summary.skipped,
                      "failed": len(summary.failed), "clips": summary.clips}))  # fmt: skip
    for error in summary.failed:
        print(f"i3d: {error}", file=sys.stderr)
    return 1 if summary.failed else 0


def dense_clips(args: argparse.Namespace, weights) -> DenseClips:
    """Where the clips go: mmaction2's centred dense clips of its own length, or, for a whole-video model (Inception),
    start-aligned windows of ``--window`` frames every ``--stride``."""
    pre = weights.preprocessing
    if not pre.whole_video:
        if args.window is not None:
            raise I3DError(f"--window is for the Inception models; {weights.name} takes {pre.clip_len}-frame clips")
        return DenseClips(pre.clip_len, args.clip_interval or 16, pre.frame_interval)
    if args.clips != "dense":
        raise I3DError(f"{weights.name} has no test clips; its features come from --window / --stride windows")
    window = args.window or 64
    if window < 1 or (args.clip_interval or window) < 1:
        raise I3DError(f"--window and --stride must be >= 1, got {window} and {args.clip_interval}")
    return windows(window, args.clip_interval or window, tail=args.tail)


def _fold_ranks(out_dir: Path, *, plan, weights, rank: int) -> None:
    import torch.distributed as dist

    from ..features.run import FeatureJob, FileSink

    dist.init_process_group("gloo")
    try:
        dist.barrier()
        if rank == 0:
            FileSink(FeatureJob(plan, weights, out_dir)).close()
    finally:
        dist.destroy_process_group()


def feature_backend(args: argparse.Namespace, weights, *, device: str, precision: str):
    """The backend giving pooled features, and the classifier's weights for --scores (torch: the checkpoint's fc;
    ONNX: from --checkpoint, when given)."""
    from ..model.checkpoint import load_model
    from ..runtime import BackendSpec, make_backend
    from ..runtime.two_stream import TwoStreamBackend, flow_stream

    spec = BackendSpec(
        backend=args.backend, checkpoint=args.checkpoint, model=args.model, device=device,
        threads=args.threads or None, engine=args.engine, precision=precision, features=True,
    )  # fmt: skip
    backend = make_backend(spec, weights)
    dim = weights.architecture().feature_dim
    if backend.num_classes != dim:
        raise I3DError(f"{args.model}: gives {backend.num_classes} values per view, not {dim}-d features "
                       "(export it with i3d export --output-kind features)")  # fmt: skip
    if args.flow_checkpoint is not None:
        backend = TwoStreamBackend(backend, flow_stream(args.flow_checkpoint, spec, weights)[0])
    head = getattr(backend, "head", None)
    if args.scores and head is None:
        if not args.checkpoint:
            raise I3DError(f"--scores with the {args.backend} backend needs --checkpoint (the classifier's weights)")
        head = load_model(args.checkpoint, weights).features_only().head
    return backend, head


def _extract(args, plan, tasks, *, backend, head, weights, where, shard):
    from tqdm import tqdm

    from ..features.outputs import describe
    from ..features.run import FeatureJob, extract_features

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    description = describe(plan, checkpoint=args.checkpoint or args.model, weights=weights, backend=backend,
                           dim=backend.num_classes)  # fmt: skip
    (out_dir / "features.json").write_text(json.dumps(description, indent=1) + "\n")
    job = FeatureJob(
        plan, weights, out_dir, decoder=args.decoder, timeout=args.timeout, transport=args.transport,
        ray=ray_options(args), gpu_decoders=args.gpu_decoders,
        workers=where.workers,
        part=f"{shard.index}-of-{shard.total}" if shard.total > 1 else "",
    )  # fmt: skip
    bar = tqdm(total=len(tasks), unit="video", disable=args.no_progress or None, file=sys.stderr)
    clips = 0

    def on_video(count: int) -> None:
        nonlocal clips
        clips += count
        bar.update(1)
        bar.set_postfix(clips=clips)

    try:
        return extract_features(job, tasks, backend, head=head, on_video=on_video)
    finally:
        bar.close()
