"""End-to-end `i3d eval` against pure inference (`i3d bench`) for the same backend and batch size, one run.

Usage: python benchmarks/eval_e2e.py --backend openvino --model i3d.onnx [--videos 6] [--batch-size 1] [--workers 1]
       python benchmarks/eval_e2e.py --backend torch [--checkpoint CKPT]     # random weights by default

The list holds the sample videos repeated to --videos entries. Prints seconds per video of both and their ratio;
the evaluation should be bound by the model (ratio near 1) when decoding runs in workers ahead of it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from i3d_infer.bench import bench_inference
from i3d_infer.evaluate.runner import EvalConfig, RunOptions, evaluate
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.runtime import BackendSpec, make_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--model")
    parser.add_argument("--checkpoint")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    random_weights = args.backend == "torch" and not args.checkpoint
    backend = make_backend(
        BackendSpec(args.backend, args.checkpoint, args.model, args.device, random_weights=random_weights)
    )
    record = bench_inference(backend, args.batch_size, (10, 3, 32, 256, 256), warmup=1, iters=3, progress=False)
    pure = record.mean_ms / 1000 / args.batch_size
    videos = sample_videos()
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("".join(f"{videos[i % 3].name} {i % 400}\n" for i in range(args.videos)))
        config = EvalConfig(
            list_file=str(listing),
            root=str(videos[0].parent),
            backend=args.backend,
            checkpoint=args.checkpoint,
            model=args.model,
            random_weights=random_weights,
            batch_size=args.batch_size,
        )
        options = RunOptions(device=args.device, workers=args.workers, progress=False)
        start = time.perf_counter()
        run = evaluate(config, Path(tmp) / "run", options)
        e2e = (time.perf_counter() - start) / args.videos
        loop = run.metrics.timing.wall_seconds / args.videos  # from the first decode to the last result
        model = run.metrics.timing.model_seconds / args.videos
        shutil.rmtree(Path(tmp) / "run")
    print(f"{args.backend} on {backend.device}, batch {args.batch_size}, {args.videos} videos, {args.workers} workers")
    print(f"pure inference (i3d bench): {pure:.2f} s/video")
    print(f"i3d eval, whole call:       {e2e:.2f} s/video (with model load and result files)")
    print(f"i3d eval, video loop:       {loop:.2f} s/video (model calls {model:.2f} s/video)")
    print(f"ratio whole / pure:         {e2e / pure:.3f}")
    print(f"ratio loop / pure:          {loop / pure:.3f}")


if __name__ == "__main__":
    main()
