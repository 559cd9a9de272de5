"""INT8 quantization for OpenVINO: runs, is measured against fp32, and the int8 IR serves predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from i3d_infer.cli import main
from i3d_infer.errors import I3DError
from i3d_infer.export.onnx import ExportOptions, export_onnx
from i3d_infer.model.checkpoint import load_model
from i3d_infer.runtime.openvino_backend import OpenVINOBackend
from reduced import SMALL_PRE

pytest.importorskip("nncf")


@pytest.mark.slow
def test_quantize_small_graph(checkpoint_file, tmp_path, sample_videos, capsys):
    onnx_path = export_onnx(load_model(checkpoint_file), tmp_path / "m.onnx", ExportOptions(shape=(1, 2, 3, 8, 64, 64)))
    out = tmp_path / "m_int8.xml"
    videos = [str(p) for p in sample_videos.values()]
    assert main(["quantize", "--model", str(onnx_path), "--output", str(out), "--calibration", *videos]) == 0
    printed = capsys.readouterr().out
    assert "max rel error of clip logits" in printed and "video top-1 agreement" in printed
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["videos"] == 3 and report["calibration_videos"] == 3
    assert 0 < report["max_rel"] < 0.2  # int8 is not exact, and not garbage either
    int8 = OpenVINOBackend(out, preprocessing=SMALL_PRE)
    views = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 64, 64), np.uint8)
    assert int8(views).shape == (2, 400)
    with pytest.raises(I3DError, match="name it"):
        from i3d_infer.export.int8 import quantize_openvino

        quantize_openvino(onnx_path, tmp_path / "x.onnx", videos)
