"""The fused NV12 -> RGB -> resize Triton kernel equals the torch ops (themselves equal to OpenCV, see
test_data_tensor_ops.py) bit for bit, run on this CPU by Triton's interpreter.

The interpreter is chosen when the kernel is defined (``TRITON_INTERPRET=1`` before the import), so the checks run
in a fresh process; it runs every program with numpy, slowly: shapes stay small.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="Triton is not installed (it comes with torch's CUDA wheels)")

CHECK = r"""
import json, sys
import numpy as np, torch
from i3d_infer.data.gpu import fused_nv12
from i3d_infer.data.gpu.decode import NvdecReader
from i3d_infer.data.pipeline import read_frames, sampler
from i3d_infer.data.gpu.tensor_ops import nv12_to_rgb, resize_linear
from i3d_infer.data.transforms import get_protocol
from i3d_infer.model.weights import Preprocessing
from videos import ffmpeg_nv12

rng = np.random.default_rng(3)
report = {"available": fused_nv12.available(torch.device("cpu")), "shapes": {}}
shapes = [
    (24, 40, 24, 40),  # the same size: the conversion only
    (32, 48, 16, 24),  # an exact 2x reduction: INTER_AREA
    (36, 50, 17, 23),  # down, odd output sizes
    (18, 22, 37, 139),  # up, two column blocks, a partial row tile
    (272, 640, 9, 21),  # bikes.mp4's size, squeezed
    (30, 44, 30, 20),  # one axis kept
]
for h, w, height, width in shapes:
    nv12 = torch.from_numpy(rng.integers(0, 256, (3, h * 3 // 2, w), dtype=np.uint8))
    frames = torch.zeros((5, height, width, 3), dtype=torch.uint8)
    fused_nv12.nv12_resize(nv12, frames[1:4])  # a slice of a larger tensor, as the reader writes
    rgb = nv12_to_rgb(nv12)
    expected = rgb if (h, w) == (height, width) else resize_linear(rgb, width, height)
    report["shapes"][f"{h}x{w}->{height}x{width}"] = [
        int((frames[1:4].int() - expected.int()).abs().max()),
        bool(frames[0].eq(0).all() and frames[4].eq(0).all()),  # nothing written outside the slice
    ]
pre = Preprocessing(clip_len=4, num_clips=2, size=32)
path = sys.argv[1]
reader = NvdecReader(torch.device("cpu"), get_protocol("threecrop"), pre.size, batches=ffmpeg_nv12, fused=True)
_, indices, frames, table = reader.read(path, sampler(pre))
expected = read_frames(path, "threecrop", pre)
report["reader"] = [
    int((frames.int() - torch.from_numpy(expected.frames).int()).abs().max()),
    bool(np.array_equal(indices, expected.frame_indices) and np.array_equal(table, expected.table)),
    len(frames),
]
print(json.dumps(report))
"""


@pytest.mark.slow
def test_fused_kernel_equals_the_torch_ops_and_the_cpu_pipeline(sample_videos):
    tests = Path(__file__).parent
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join([str(tests), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(sample_videos["carphone_pristine"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["available"]
    for shape, (max_diff, untouched) in report["shapes"].items():
        assert (max_diff, untouched) == (0, True), shape
    max_diff, same_sampling, count = report["reader"]
    assert (max_diff, same_sampling) == (0, True) and count > 0


def test_the_reader_uses_torch_ops_where_the_kernel_does_not_run():
    import torch

    from i3d_infer.data.gpu import fused_nv12
    from i3d_infer.data.gpu.decode import NvdecReader
    from i3d_infer.data.transforms import get_protocol

    cpu = torch.device("cpu")
    if os.environ.get("TRITON_INTERPRET") != "1":
        assert fused_nv12.unavailable(cpu) == "not a CUDA device (cpu)"
        assert not NvdecReader(cpu, get_protocol("seed"), 32, batches=lambda path: (0, iter([]))).fused
