"""The fast engine (2D-factored, BN folded) equals the eager 3D model; precisions and the GPU script on CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from i3d_infer.errors import I3DError
from i3d_infer.model.checkpoint import build_model, convert_state_dict
from i3d_infer.model.config import i3d_nl_dot_product_r50, i3d_r50
from i3d_infer.runtime.fast_engine import FastI3D
from i3d_infer.runtime.torch_backend import TorchBackend
from mmaction_reference import NO_NON_LOCAL, random_state_dict


@pytest.fixture(scope="module")
def model(mm_state):
    recognizer = build_model(i3d_nl_dot_product_r50())
    recognizer.network.load_state_dict(convert_state_dict(mm_state, recognizer.network), strict=True)
    return recognizer


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("shape", [(2, 3, 16, 64, 64), (1, 3, 8, 96, 96), (1, 3, 12, 64, 80), (3, 3, 18, 64, 64)])
def test_fast_fp32_equals_eager(model, shape):
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.inference_mode():
        assert rel_err(FastI3D(model)(x), model(x)) <= 1e-5


def test_fast_plain_r50_equals_eager():
    recognizer = build_model(i3d_r50())
    state = random_state_dict(seed=4, non_local=NO_NON_LOCAL)
    recognizer.network.load_state_dict(convert_state_dict(state, recognizer.network), strict=True)
    x = torch.randint(0, 256, (2, 3, 16, 64, 64), dtype=torch.uint8)
    with torch.inference_mode():
        assert rel_err(FastI3D(recognizer)(x), recognizer(x)) <= 1e-5


@pytest.mark.slow
def test_full_size_clip(model):
    x = torch.randint(0, 256, (1, 3, 32, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        assert rel_err(FastI3D(model)(x), model(x)) <= 1e-5


@pytest.mark.slow
def test_bf16_is_close_and_engine_selection(model, sample_videos):
    from dataclasses import replace

    from i3d_infer import read_video
    from i3d_infer.model.weights import DEFAULT_WEIGHTS

    pre = replace(DEFAULT_WEIGHTS.preprocessing, clip_len=16, num_clips=2, size=64)
    views = np.concatenate([read_video(p, "seed", pre).views for p in sample_videos.values()])
    assert TorchBackend(model).label == "torch-fast-fp32"  # the default
    eager = TorchBackend(model, engine="eager")
    bf16 = TorchBackend(model, engine="fast", precision="bf16")
    expected, got = eager(views), bf16(views)
    assert np.abs(got - expected).max() / np.abs(expected).max() < 2e-2  # measured ~5e-3
    with pytest.raises(I3DError, match="eager engine is the fp32 reference"):
        TorchBackend(model, engine="eager", precision="fp16")
    with pytest.raises(I3DError, match="unknown precision"):
        TorchBackend(model, engine="fast", precision="int4")
    with pytest.raises(I3DError, match="cudnn epilogue needs a CUDA device"):
        TorchBackend(model, engine="fast", epilogue="cudnn")
    assert TorchBackend(model, engine="fast").model.epilogue == "torch"  # the CPU's


def test_fast_engine_folds_batchnorm_once(model):
    fast = FastI3D(model)
    assert not any(isinstance(m, torch.nn.BatchNorm3d | torch.nn.BatchNorm2d) for m in fast.modules())
    assert all(not p.requires_grad for p in fast.parameters())


@pytest.mark.slow
def test_gpu_script_runs_on_cpu(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--device",
            "cpu",
            "--shape",
            "2",
            "3",
            "8",
            "64",
            "64",
            "--batch-sizes",
            "1",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "fast fp32 vs eager fp32" in result.stdout and "OK" in result.stdout
    import json

    report = json.loads(out.read_text())
    assert len(report["bench"]) == 3 and len(report["checks"]) == 4
