"""Backends against torch fp32 on the same real-video input; predict and bench through them; bad models."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from i3d_infer import Predictor, read_video
from i3d_infer.cli import main
from i3d_infer.errors import I3DError
from i3d_infer.export.onnx import ExportOptions, export_onnx
from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.runtime import BackendSpec, make_backend
from i3d_infer.runtime.onnxruntime_backend import OnnxRuntimeBackend
from i3d_infer.runtime.openvino_backend import OpenVINOBackend
from i3d_infer.runtime.torch_backend import TorchBackend
from reduced import SMALL_PRE

SMALL = replace(DEFAULT_WEIGHTS, preprocessing=SMALL_PRE)
BACKENDS = [OnnxRuntimeBackend, OpenVINOBackend]


@pytest.fixture(scope="module")
def models(checkpoint_file, tmp_path_factory):
    """Small exported graphs: uint8 static batch 1, and float32 input with a dynamic batch."""
    recognizer = load_model(checkpoint_file)
    root = tmp_path_factory.mktemp("onnx")
    shape = (1, 2, 3, 8, 64, 64)
    return {
        "uint8": export_onnx(recognizer, root / "uint8.onnx", ExportOptions(shape=shape)),
        "float32": export_onnx(
            recognizer, root / "f32.onnx", ExportOptions(shape=shape, dynamic_batch=True, input_kind="float32")
        ),
        "probs": export_onnx(recognizer, root / "probs.onnx", ExportOptions(shape=shape, output_kind="video-probs")),
        "recognizer": recognizer,
    }


@pytest.fixture(scope="module")
def real_views(sample_videos):
    """Two real videos' views (threecrop: 6 views each of 3x8x64x64) -> (12, 3, 8, 64, 64) uint8."""
    return np.concatenate(
        [read_video(sample_videos[n], "threecrop", SMALL_PRE).views for n in ("bikes", "carphone_pristine")]
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend_class", BACKENDS, ids=lambda c: c.name)
@pytest.mark.parametrize("kind", ["uint8", "float32"])
def test_backend_matches_torch(models, real_views, backend_class, kind):
    expected = TorchBackend(models["recognizer"])(real_views)
    backend = backend_class(models[kind], threads=2, preprocessing=SMALL_PRE)
    assert backend.num_classes == 400 and backend.views_per_video == 2
    got = backend(real_views)  # 6 videos of 2 views: 6 calls at static batch 1, 1 call when dynamic
    assert got.shape == expected.shape == (12, 400)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.slow
def test_predictor_on_each_backend_agrees(models, checkpoint_file, sample_videos):
    scores = {}
    for backend in ("torch", "onnxruntime", "openvino"):
        model = None if backend == "torch" else models["uint8"]
        predictor = Predictor.create(checkpoint_file, backend=backend, model=model, weights=SMALL)
        scores[backend] = predictor.predict(sample_videos["bikes"], protocol="threecrop").scores
    for backend in ("onnxruntime", "openvino"):
        np.testing.assert_allclose(scores[backend], scores["torch"], rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_bad_models_are_one_line_errors(models, tmp_path, real_views):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 not a protobuf at all" * 10)
    for backend_class in BACKENDS:
        with pytest.raises(I3DError, match=r"corrupt.onnx: .*cannot (load|read) it"):
            backend_class(corrupt)
        with pytest.raises(I3DError, match=r"missing.onnx: ONNX model not found"):
            backend_class(tmp_path / "missing.onnx")
        with pytest.raises(I3DError, match=r"not an i3d-infer clip-logits model"):
            backend_class(models["probs"])
        backend = backend_class(models["uint8"], preprocessing=SMALL_PRE)
        with pytest.raises(I3DError, match=r"takes videos of 2 views of \(3, 8, 64, 64\), got 10 views of"):
            backend(np.zeros((10, 3, 32, 256, 256), np.uint8))  # the default shape against a small model
    with pytest.raises(I3DError, match="needs --model"):
        make_backend(BackendSpec("openvino"))
    with pytest.raises(I3DError, match="--model is for"):
        make_backend(BackendSpec("torch", model=models["uint8"]))


@pytest.mark.slow
def test_cli_bench_json(models, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--backend", "onnxruntime", "--model", str(models["float32"]), "--batch-sizes", "1,2",
                 "--warmup", "1", "--iters", "2", "--json", str(out)])  # fmt: skip
    assert code == 0
    records = json.loads(out.read_text())
    assert [r["batch_size"] for r in records] == [1, 2]
    for r in records:
        assert r["iters"] == 2 and r["input_shape"] == [2 * r["batch_size"], 3, 8, 64, 64]
        assert r["videos_per_s"] == pytest.approx(1000 * r["batch_size"] / r["mean_ms"])
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"] and "onnxruntime" in r["versions"]
    assert "videos/s" in capsys.readouterr().out
    assert (
        main(["bench", "--backend", "torch", "--shape", "2", "3", "8", "64", "64", "--iters", "1", "--warmup", "0"])
        == 0
    )
    assert main(["bench", "--backend", "onnxruntime", "--model", str(models["uint8"]), "--batch-sizes", "4"]) == 2
    assert "static batch of 1" in capsys.readouterr().err


def test_cli_bench_e2e(models, tmp_path, sample_videos, capsys, monkeypatch):
    (tmp_path / "list.txt").write_text(f"{sample_videos['bikes']} 0\n{sample_videos['carphone_pristine']} 1\n")
    monkeypatch.setattr("i3d_infer.model.weights.DEFAULT_WEIGHTS", SMALL)  # the list reader's default pipeline
    from i3d_infer.bench import bench_e2e
    from i3d_infer.data.datasets import VideoDataset

    dataset = VideoDataset(tmp_path / "list.txt", "/", preprocessing=SMALL_PRE)
    record = bench_e2e(make_backend(BackendSpec("onnxruntime", model=models["float32"]), SMALL), dataset, 1, warmup=1)
    assert record.mode == "e2e" and record.iters == 1 and record.input_shape == (2, 3, 8, 64, 64)
