"""What the NVDEC reader asks of the GPU per video, counted on this CPU: tensor operations (each one is at least one
kernel launch on a GPU, dispatched from the decode thread under the GIL) and the bytes they move.

Usage (any machine with PyAV; a few seconds):
    python benchmarks/gpu_decode_ops.py [--protocol seed] [--batch 64]

NVDEC is replaced by FFmpeg's NV12 planes of the same streams (equal by the H.264 standard), handed out in batches
of ``--batch`` frames as PyNvVideoCodec's ``get_batch_frames`` does; the reader's torch work runs on CPU tensors.
Counted with a ``TorchDispatchMode``: every aten call that is not a view (views launch nothing). The CPU
milliseconds are the CPU's arithmetic, not a GPU figure: on a GPU the same ops run as kernels
(``benchmarks/gpu_decode.py`` times them there).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from i3d_infer.data.gpu.decode import NVDEC_BATCH, NvdecReader
from i3d_infer.data.pipeline import sampler
from i3d_infer.data.transforms import get_protocol
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.prepare.sample_videos import sample_videos

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from videos import ffmpeg_nv12  # FFmpeg's planes in PyNvVideoCodec's shape (the tests' stand-in for NVDEC)


class CountOps(TorchDispatchMode):
    """Counts the aten operations that are not views, and the bytes they read and write (their tensor arguments'
    and results' sizes: what a memory-bound GPU kernel moves)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.ops[func.overloadpacket.__name__] += 1
            tensors = [t for t in pytree.tree_leaves((args, kwargs, result)) if isinstance(t, torch.Tensor)]
            self.bytes += sum(t.numel() * t.element_size() for t in tensors)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="seed")
    parser.add_argument("--batch", type=int, default=NVDEC_BATCH, help="frames per decoder batch")
    args = parser.parse_args()
    pre = DEFAULT_WEIGHTS.preprocessing
    print(f"torch {torch.__version__}, protocol {args.protocol}, size {pre.size}, decoder batches of {args.batch}")
    print(f"{'video':<22} {'frames':>6} {'sampled':>7} {'tensor ops':>10} {'MB moved':>9} {'CPU ms':>7}  most frequent")
    for path in sample_videos():
        count, sampled, counted, ms = measure(path, args.protocol, args.batch)
        ops, moved = counted.ops, counted.bytes / 1e6
        common = ", ".join(f"{name} {n}" for name, n in ops.most_common(3))
        print(f"{path.name:<22} {count:>6} {sampled:>7} {sum(ops.values()):>10} {moved:>9.0f} {ms:>7.1f}  {common}")


def measure(path: Path, protocol: str, batch: int) -> tuple[int, int, CountOps, float]:
    """(frames, sampled frames, the ops of one read, CPU ms of one read) of the NVDEC reader on ``path``."""
    pre = DEFAULT_WEIGHTS.preprocessing
    # decode first, outside the count and the clock: the reader's own work is what is measured
    hint, batches = ffmpeg_nv12(str(path), batch)
    decoded = [[frame.numpy() for frame in frames] for frames in batches]  # DLPack producers, as NVDEC's frames
    reader = NvdecReader(torch.device("cpu"), get_protocol(protocol), pre.size, batches=lambda _: (hint, iter(decoded)))
    reader.read(path, sampler(pre))  # warm-up (resize taps, colour tables)
    with CountOps() as counted:
        count, _, frames, _ = reader.read(path, sampler(pre))
    start = time.perf_counter()
    reader.read(path, sampler(pre))
    return count, len(frames), counted, (time.perf_counter() - start) * 1e3


if __name__ == "__main__":
    main()
