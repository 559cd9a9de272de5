"""ONNX export: every offered option combination, verified against eager PyTorch; bad inputs are one-line errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from i3d_infer.cli import main
from i3d_infer.errors import I3DError
from i3d_infer.export.onnx import ExportOptions, ExportWrapper, example_input, export_onnx, verify_onnx
from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.runtime.onnxruntime_backend import make_session

SMALL = (1, 2, 3, 8, 64, 64)  # B V C T H W: small enough for CPU tests, same graph structure


@pytest.fixture(scope="module")
def recognizer(checkpoint_file):
    return load_model(checkpoint_file)


@pytest.mark.parametrize(
    "options",
    [
        ExportOptions(shape=SMALL),
        ExportOptions(shape=SMALL, dynamic_batch=True, opset=11, input_kind="float32"),
        ExportOptions(shape=SMALL, output_kind="video-probs", simplify=True),
        ExportOptions(shape=SMALL, dynamic_batch=True, output_kind="video-probs", simplify=True),
        ExportOptions(shape=SMALL, fp16=True),
    ],
    ids=["static-uint8-logits", "dynamic-float32-opset11", "probs-simplified", "dynamic-probs-simplified", "fp16"],
)
@pytest.mark.slow
def test_export_verifies(recognizer, tmp_path, options):
    path = export_onnx(recognizer, tmp_path / "m.onnx", options)
    graph = onnx.load(str(path))
    assert [i.name for i in graph.graph.input] == ["video"]
    assert [o.name for o in graph.graph.output] == [options.output_name]
    assert graph.opset_import[0].version == options.opset
    example = example_input(options, DEFAULT_WEIGHTS.preprocessing, None)
    assert example.dtype == (np.uint8 if options.input_kind == "uint8" else np.float32)
    result = verify_onnx(path, recognizer, options, example=example)
    assert result.passed, result
    assert result.max_rel <= (1e-5 if not options.fp16 else 5e-3)
    if options.dynamic_batch:  # B = 1 and B = 3 on the same file
        session = make_session(path)
        for b in (1, 3):
            batch = example_input(replace(options, shape=(b, *SMALL[1:])), DEFAULT_WEIGHTS.preprocessing, None)
            with torch.inference_mode():
                expected = ExportWrapper(recognizer, options)(torch.from_numpy(batch)).numpy()
            got = session.run(None, {"video": batch})[0]
            assert got.shape == expected.shape == ((b * 2, 400) if options.output_kind == "clip-logits" else (b, 400))
            assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.slow
def test_cli_export_and_failure_paths(checkpoint_file, tmp_path, capsys, sample_videos):
    out = tmp_path / "cli.onnx"
    shape = [str(s) for s in SMALL]
    args = ["export", "--checkpoint", str(checkpoint_file), "--output", str(out), "--shape", *shape]
    assert main([*args, "--verify-video", str(sample_videos["bikes"])]) == 0
    printed = capsys.readouterr().out
    assert "max rel error" in printed and printed.strip().endswith("OK")
    assert main(["export", "--checkpoint", str(tmp_path / "none.pth"), "--output", str(out), "--shape", *shape]) == 2
    assert main(["export", "--checkpoint", str(checkpoint_file), "--output", str(out), "--shape", "1", "2", "4",
                 "8", "64", "64"]) == 2  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "checkpoint not found" in err[0] and "--shape must be B V 3 T H W" in err[1]


def test_options_are_validated():
    for bad in ({"input_kind": "int8"}, {"output_kind": "probs"}, {"opset": 9}, {"shape": (1, 10, 3, 32, 256)}):
        with pytest.raises(I3DError):
            ExportOptions(**bad)
