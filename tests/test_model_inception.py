"""DeepMind's Inception I3D: the network against the tests' transcription of ``i3d.py``, both checkpoint layouts,
the TF bundle reader against the released ``.index`` files, strict loading, the descriptions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i3d_infer.errors import CheckpointError, InputError
from i3d_infer.model.checkpoint import load_model, sniff_weights
from i3d_infer.model.config import inception_i3d
from i3d_infer.model.inception import InceptionI3D, same_padding, time_chunks
from i3d_infer.model.tf_bundle import read_bundle, read_index
from i3d_infer.model.weights import INCEPTION_WEIGHTS, find_weights, published_weights, read_labels
from inception_reference import (
    DEEPMIND_INDEX,
    layout,
    pytorch_i3d_state,
    random_variables,
    reference_forward,
    write_bundle,
)

TOLERANCE = 1e-5  # max |ours - reference| / max |reference|: float32 against the float64 transcription


@pytest.fixture(scope="session")
def rgb_variables():
    return random_variables("variables_rgb_imagenet", seed=1)


@pytest.fixture(scope="session")
def rgb_bundle(tmp_path_factory, rgb_variables):
    """A synthetic ``rgb_imagenet/model.ckpt`` with the released file's variable names and shapes."""
    return write_bundle(tmp_path_factory.mktemp("deepmind") / "rgb_imagenet" / "model.ckpt", rgb_variables)


@pytest.fixture(scope="session")
def rgb_pt(tmp_path_factory, rgb_variables):
    """The same weights as pytorch-i3d's ``rgb_imagenet.pt``."""
    path = tmp_path_factory.mktemp("pytorch_i3d") / "rgb_imagenet.pt"
    torch.save(pytorch_i3d_state(rgb_variables, "RGB/inception_i3d/"), path)
    return path


def relative_error(ours, reference) -> float:
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


@pytest.mark.parametrize("name", ["rgb_imagenet", "flow_imagenet", "rgb_scratch_kin600"])
def test_the_released_index_files_read_as_listed(name):
    entries = read_index(DEEPMIND_INDEX / f"{name}.index")  # DeepMind's own files, written by TensorFlow
    assert {k: e["shape"] for k, e in entries.items()} == layout(f"variables_{name}")
    assert {e["dtype"] for e in entries.values()} == {1}  # float32


def test_bundle_round_trip(rgb_bundle, rgb_variables):
    read = read_bundle(rgb_bundle)
    assert read.keys() == rgb_variables.keys()
    assert all(np.array_equal(read[k], v) for k, v in rgb_variables.items())


def test_state_dict_names_are_pytorch_i3ds():
    ours = {k: tuple(v.shape) for k, v in InceptionI3D(inception_i3d()).state_dict().items()}
    assert {k: s for k, s in ours.items() if "num_batches" not in k} == layout("keys_pytorch_rgb_imagenet")
    assert sum(p.numel() for p in InceptionI3D(inception_i3d()).parameters()) == 12_697_264


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"), [(9, 7, 2, (3, 3)), (10, 7, 2, (2, 3)), (5, 2, 2, (0, 1))]
)
def test_same_padding_puts_the_odd_unit_at_the_end(size, kernel, stride, pads):
    assert same_padding(size, kernel, stride) == pads


@pytest.mark.parametrize("shape", [(9, 193, 193), (10, 224, 224), (13, 200, 211)])  # odd and even: SAME differs
def test_tf_checkpoint_equals_deepmind_forward(rgb_bundle, rgb_variables, shape):
    model = load_model(rgb_bundle, find_weights("rgb_imagenet")).network
    video = np.random.default_rng(sum(shape)).uniform(-1, 1, (1, *shape, 3)).astype(np.float32)
    expected = reference_forward(rgb_variables, video)
    with torch.inference_mode():
        got = model.endpoints(torch.from_numpy(video).permute(0, 4, 1, 2, 3))  # (n, T, H, W, C) -> (n, C, T, H, W)
    for key in ("logits", "logits_per_time", "features"):
        assert relative_error(got[key], expected[key]) < TOLERANCE, key


def test_pytorch_i3d_file_equals_the_tf_one(rgb_bundle, rgb_pt):
    weights = find_weights("pytorch-i3d rgb_imagenet")
    video = torch.rand(1, 3, 12, 224, 224) * 2 - 1
    with torch.inference_mode():
        tf = load_model(rgb_bundle, weights).network(video)
        pt = load_model(rgb_pt, weights).network(video)
    assert torch.equal(tf, pt)


def test_flow_and_kin600_layouts(tmp_path):
    flow = random_variables("variables_flow_imagenet", seed=2)
    path = write_bundle(tmp_path / "flow_imagenet" / "model.ckpt", flow)
    model = load_model(path, find_weights("flow_imagenet")).network
    video = np.random.default_rng(0).uniform(-1, 1, (1, 10, 224, 224, 2)).astype(np.float32)
    with torch.inference_mode():
        got = model(torch.from_numpy(video).permute(0, 4, 1, 2, 3))
    assert relative_error(got, reference_forward(flow, video, "Flow/inception_i3d/")["logits"]) < TOLERANCE

    kin600 = random_variables("variables_rgb_scratch_kin600", seed=3)  # no prefix, (1,1,1,1,C) BN, Momentum slots
    path = write_bundle(tmp_path / "rgb_scratch_kin600" / "model.ckpt", kin600)
    weights = published_weights(path)
    assert weights.name == "rgb_scratch_kin600" and len(read_labels(weights=weights)) == 600
    video = np.random.default_rng(1).uniform(-1, 1, (1, 9, 224, 224, 3)).astype(np.float32)
    with torch.inference_mode():
        got = load_model(path.parent, weights).network(torch.from_numpy(video).permute(0, 4, 1, 2, 3))
    assert relative_error(got, reference_forward(kin600, video, "")["logits"]) < TOLERANCE


def test_loading_is_strict(tmp_path, rgb_variables):
    weights = find_weights("rgb_imagenet")
    broken = dict(rgb_variables)
    del broken["RGB/inception_i3d/Mixed_4c/Branch_1/Conv3d_0b_3x3/conv_3d/w"]
    broken["RGB/inception_i3d/Extra/w"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match=r"1 missing: Mixed_4c/Branch_1/Conv3d_0b_3x3/conv_3d/w; 1 unexpected"):
        load_model(write_bundle(tmp_path / "a" / "model.ckpt", broken), weights)
    state = pytorch_i3d_state(rgb_variables, "RGB/inception_i3d/")
    state["logits.conv3d.bias"] = torch.zeros(7)
    torch.save(state, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match=r"mis-shaped: logits.conv3d.bias \[7\] \(expected \[400\]\)"):
        load_model(tmp_path / "b.pt", weights)
    (tmp_path / "c" / "model.ckpt.index").parent.mkdir()
    (tmp_path / "c" / "model.ckpt.index").write_bytes(b"not a table")
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        load_model(tmp_path / "c" / "model.ckpt", weights)


def test_too_short_or_small_input_is_one_clear_error():
    model = InceptionI3D(inception_i3d())
    with pytest.raises(InputError, match="at least 9 frames of 193x193 pixels, got 8 of 224x224"):
        model(torch.zeros(1, 3, 8, 224, 224))
    with pytest.raises(InputError, match="got 9 of 192x224"):
        model(torch.zeros(1, 3, 9, 224, 192))


def test_logits_are_the_head_on_the_features(rgb_bundle):
    model = load_model(rgb_bundle, find_weights("rgb_imagenet"))
    video = (torch.rand(1, 3, 17, 224, 224) * 255).to(torch.uint8)
    with torch.inference_mode():
        logits = model(video).numpy()
        weight, bias = model.features_only().head
        features = model(video).numpy()
    assert features.shape == (1, 1024)
    assert relative_error(features @ weight.T + bias, logits) < TOLERANCE


def test_files_are_recognised_by_name_or_contents(tmp_path, rgb_pt, rgb_variables):
    assert published_weights("/x/rgb_imagenet/model.ckpt").name == "rgb_imagenet"
    assert published_weights("/x/flow_scratch/model.ckpt.index").name == "flow_scratch"
    assert published_weights("/x/flow_imagenet.pt").name == "pytorch-i3d flow_imagenet"
    assert published_weights("/x/other/model.ckpt") is None
    assert len(INCEPTION_WEIGHTS) == 8
    charades = pytorch_i3d_state(random_variables(seed=4, classes=157), "RGB/inception_i3d/")
    torch.save(charades, tmp_path / "i3d_pretrained_157.pt")
    weights = sniff_weights(tmp_path / "i3d_pretrained_157.pt")
    assert weights.architecture().num_classes == 157 and weights.stream == "rgb" and weights.labels is None
    assert read_labels(weights=weights)[156] == "class 156"


def test_a_tf_bundle_downloads_its_two_files(server, tmp_path, monkeypatch, rgb_bundle):
    monkeypatch.setenv("I3D_INFER_CACHE", str(tmp_path / "cache"))
    for suffix in (".index", ".data-00000-of-00001"):
        server.files[f"rgb_imagenet/model.ckpt{suffix}"] = rgb_bundle.with_name("model.ckpt" + suffix).read_bytes()
    weights = find_weights("rgb_imagenet")
    model = load_model(f"{server.url}/rgb_imagenet/model.ckpt", weights, progress=False)
    assert (tmp_path / "cache" / "rgb_imagenet" / "model.ckpt.index").is_file()
    local = load_model(rgb_bundle, weights).network
    assert torch.equal(model.network.logits.conv3d.bias, local.logits.conv3d.bias)


@pytest.mark.parametrize("frames", range(9, 700, 7))
def test_time_chunks_cover_every_output_once_with_its_receptive_field(frames):
    size = frames
    for _ in range(3):
        size = -(-size // 2)
    outputs = []
    for start, end, keep in time_chunks(frames, 128):
        assert start % 8 == 0 and end - start <= 128 and (end == frames or (end - start) % 4 == frames % 4)
        first = start // 8 + keep.start
        for j in range(first, start // 8 + keep.stop):
            assert (start == 0 or 8 * j - 47 >= start) and (end == frames or 8 * j + 62 < end), (start, end, j)
            outputs.append(j)
    assert outputs == list(range(size - 1))


@pytest.mark.parametrize("frames", [149, 152])  # both remainders' parities: the chunks pad as the whole video does
def test_a_long_input_in_chunks_equals_one_pass(monkeypatch, frames):
    model = InceptionI3D(inception_i3d())
    video = torch.rand(1, 3, frames, 193, 193) * 2 - 1
    with torch.inference_mode():
        whole = model.endpoints(video)["features_per_time"]
        monkeypatch.setattr(model, "max_frames", 200)
        chunked = model.endpoints(video)["features_per_time"]
    assert len(time_chunks(frames, 200)) == 2
    assert relative_error(chunked, whole) < TOLERANCE


def test_the_fast_engine_is_the_network_with_batchnorm_folded(rgb_bundle):
    from i3d_infer.runtime.torch_backend import TorchBackend

    recognizer = load_model(rgb_bundle, find_weights("rgb_imagenet"))
    video = (torch.rand(2, 3, 11, 224, 224) * 255).to(torch.uint8)
    with torch.inference_mode():
        eager = recognizer(video).numpy()
    fast = TorchBackend(recognizer, "cpu", engine="fast")
    assert fast.label == "torch-fast-fp32" and isinstance(recognizer.network.Conv3d_1a_7x7.bn, torch.nn.BatchNorm3d)
    assert relative_error(fast(video.numpy()), eager) < TOLERANCE
