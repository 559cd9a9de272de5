"""mmaction2's I3D family: each variant's network (eager and fast engine) against the tests' functional mmaction2
forward, DenseSampleFrames' test clips against a transcription, every published name picking its architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i3d_infer.data.sampling import sample_frame_indices
from i3d_infer.model.checkpoint import build_model, convert_state_dict
from i3d_infer.model.config import i3d_nl_embedded_gaussian_r50, i3d_nl_gaussian_r50, i3d_r50_heavy
from i3d_infer.model.weights import MMACTION2_FAMILY, PUBLISHED, published_weights
from i3d_infer.runtime.fast_engine import FastI3D
from mmaction_reference import (
    HEAVY,
    NO_NON_LOCAL,
    mmaction2_dense_test_frame_inds,
    normalize,
    random_state_dict,
    reference_forward,
)

TOLERANCE = 1e-5  # max |ours - reference| / max |reference|
VARIANTS = {  # our builder, the reference's layout (key_shapes / reference_forward arguments)
    "embedded_gaussian": (i3d_nl_embedded_gaussian_r50, {"mode": "embedded_gaussian"}),
    "gaussian": (i3d_nl_gaussian_r50, {"mode": "gaussian"}),
    "heavy": (i3d_r50_heavy, {"non_local": NO_NON_LOCAL, **HEAVY}),
}


def variant(name: str, seed: int = 1):
    """A recognizer of the variant with synthetic weights in mmaction2's key layout, and those weights."""
    builder, layout = VARIANTS[name]
    keys = {k: v for k, v in layout.items() if k in ("non_local", "mode", "inflate")}
    state = random_state_dict(seed=seed, **keys)
    model = build_model(builder())
    model.network.load_state_dict(convert_state_dict(state, model.network), strict=True)
    return model, state, {k: v for k, v in layout.items()}


def relative_error(ours, reference) -> float:
    return float((ours - reference).abs().max() / reference.abs().max())


@pytest.mark.parametrize("name", list(VARIANTS))
def test_eager_and_fast_equal_the_functional_mmaction2(name):
    model, state, layout = variant(name)
    views = torch.randint(0, 256, (2, 3, 16, 96, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        eager = model(views)
        reference = reference_forward(normalize(views), state, **layout)
        fast = FastI3D(model)(views)
    assert relative_error(eager, reference) < TOLERANCE
    assert relative_error(fast, reference) < TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_full_size_clip(name):
    model, state, layout = variant(name, seed=2)
    views = torch.randint(0, 256, (1, 3, 32, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = reference_forward(normalize(views), state, **layout)
        assert relative_error(model(views), reference) < TOLERANCE
        assert relative_error(FastI3D(model)(views), reference) < TOLERANCE


def test_the_non_local_modes_differ():
    """The modes are not one another under another name: the same weights give other logits."""
    x = normalize(torch.randint(0, 256, (1, 3, 16, 64, 64), dtype=torch.uint8))
    state = random_state_dict(seed=3, mode="embedded_gaussian")
    with torch.inference_mode():
        dot, embedded = reference_forward(x, state), reference_forward(x, state, mode="embedded_gaussian")
    assert relative_error(dot, embedded) > 1e-3


@pytest.mark.parametrize("n", range(1, 2001))
def test_dense_offsets_equal_mmaction2_for_every_length(n):
    ours = sample_frame_indices(n, 32, 2, num_clips=10, mode="dense")
    np.testing.assert_array_equal(ours, mmaction2_dense_test_frame_inds(n, 32, 2))


def test_every_published_name_picks_its_description():
    assert len(MMACTION2_FAMILY) == 10 and len({w.name for w in PUBLISHED}) == len(PUBLISHED)
    for weights in PUBLISHED:
        if weights.layout == "mmaction2":
            assert published_weights(f"/x/{weights.filename}") is weights
            sha = weights.filename.rsplit("-", 1)[-1]
            assert published_weights(f"/x/my_copy-{sha}") is weights  # a renamed copy keeps its sha256 prefix


def test_a_file_named_as_published_runs_its_network_and_sampling(tmp_path, sample_videos):
    from dataclasses import replace

    from i3d_infer.model.weights import choose_weights
    from i3d_infer.predict import Predictor
    from reduced import SMALL_PRE

    _, state, _ = variant("heavy")
    heavy = next(w for w in MMACTION2_FAMILY if "heavy" in w.name)
    path = tmp_path / heavy.filename
    torch.save({"state_dict": state}, path)
    weights, note = choose_weights(path)
    assert weights is heavy and note == f"{heavy.filename} is mmaction2's {heavy.name}: 1.x sampling"
    assert weights.architecture().stem_stride_t == 1
    dense = next(w for w in MMACTION2_FAMILY if w.name.startswith("i3d_r50_dense_32x2x1"))
    assert choose_weights(f"/x/{dense.filename}")[0].preprocessing.sampling == "dense"
    small = replace(heavy, preprocessing=replace(SMALL_PRE, sampling="1.x"))  # the reduced test pipeline
    prediction = Predictor.create(path, weights=small).predict(sample_videos["carphone_pristine"])
    assert prediction.scores.shape == (400,) and prediction.frame_indices.shape == (2, 8)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_onnx_export_and_runtimes(name, tmp_path):
    from i3d_infer.export.onnx import ExportOptions, export_onnx, verify_onnx
    from i3d_infer.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from i3d_infer.runtime.openvino_backend import OpenVINOBackend

    model, _, _ = variant(name)
    options = ExportOptions(shape=(1, 2, 3, 16, 64, 64))
    path = export_onnx(model, tmp_path / f"{name}.onnx", options)
    views = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 64, 64), dtype=np.uint8)
    assert verify_onnx(path, model, options, example=views[None]).passed
    with torch.inference_mode():
        expected = model(torch.from_numpy(views))
    for backend in (OnnxRuntimeBackend(path), OpenVINOBackend(path)):
        assert relative_error(torch.from_numpy(backend(views)), expected) < 1e-4, backend.name
