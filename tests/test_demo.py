"""``i3d demo``: the whole flow on the sample videos (reduced pipeline: 2 clips x 8 frames at 64x64)."""

from __future__ import annotations

import json
import urllib.error

import pytest

from i3d_infer.demo import run_demo
from reduced import SMALL

pytestmark = pytest.mark.slow  # the whole flow, full size


def test_demo_with_a_checkpoint(tmp_path, checkpoint_file):
    lines = []
    root = run_demo(tmp_path / "demo", str(checkpoint_file), SMALL, log=lines.append)
    text = "\n".join(lines)
    assert "RANDOM" not in text and f"checkpoint: {checkpoint_file}" in text
    assert "3 videos: 3 extracted" in text and "3 matched, 0 videos without annotation" in text
    assert "(OK," in text  # the export verified
    for backend in ("torch", "onnxruntime"):
        for kind in ("rawframes", "videos"):
            metrics = json.loads((root / "runs" / f"{backend}_{kind}" / "metrics.json").read_text())
            assert metrics["counts"] == {"listed": 3, "readable": 3, "failed": 0}
    diffs = [float(line.rsplit(" ", 1)[1]) for line in lines if "torch vs onnxruntime" in line]
    assert len(diffs) == 2 and max(diffs) < 1e-5
    bench = json.loads((root / "bench.json").read_text())
    assert [r["backend"] for r in bench] == ["torch-fast-fp32", "onnxruntime"]
    assert (root / "i3d.onnx").is_file() and (root / "lists" / "val_list_rawframes.txt").is_file()
    assert lines[-1].endswith(f"{(root / 'runs' / 'torch_videos' / 'report.html').as_uri()}")
    assert (root / "runs" / "torch_videos" / "report.html").is_file()
    features = sorted(p.name for p in (root / "features").glob("*.npy"))
    assert len(features) == 3 and "[7/9] features" in text
    flow = root / "flow" / "carphone003_000000_000010"
    assert len(list(flow.glob("flow_x_*.jpg"))) == len(list(flow.glob("img_*.jpg"))) - 1 == 119
    assert "two-stream I3D (Inception RGB + flow, random weights)" in text and "+ flow denseflow images" in text


def test_demo_without_the_official_checkpoint_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("I3D_INFER_CACHE", str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    lines = []
    run_demo(tmp_path / "demo", None, SMALL, log=lines.append)
    text = "\n".join(lines)
    assert "the official checkpoint is not available" in text
    assert "USING RANDOMLY INITIALISED WEIGHTS: the accuracy figures below are meaningless" in text
    assert "torch vs onnxruntime on videos" in text  # same random weights on both backends
    diffs = [float(line.rsplit(" ", 1)[1]) for line in lines if "torch vs onnxruntime" in line]
    assert max(diffs) < 1e-5
