"""mmaction2 1.x's own pipeline, exactly: the 1.x checkpoint recognised by its file name, 1.x test clips, three crops.

The reference is written here from mmaction2 1.2.0's ``inference_recognizer`` with the I3D-NL config as shipped
(``SampleFrames(32, 2, 10, test_mode=True)``, ``Resize(-1, 256)``, ``ThreeCrop(256)``, ``FormatShape('NCTHW')``,
prob fusion): every frame read with ``cv2.VideoCapture`` (decord decodes these files identically), the sampled
frames resized and cropped with cv2/numpy, the views run through the tests' functional forward.
"""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from i3d_infer import Predictor
from i3d_infer.cli import main
from i3d_infer.model.weights import I3D_NL_DOT_PRODUCT_R50_K400, I3D_NL_DOT_PRODUCT_R50_K400_V1, choose_weights
from mmaction_reference import mmaction2_test_frame_inds, normalize, reference_forward


def mmaction2_1x_views(path, clip_len: int = 32, num_clips: int = 10, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(frame_inds (num_clips, clip_len), views uint8 (3 * num_clips, 3, clip_len, size, size))`` as mmaction2
    1.2.0's test pipeline makes them (``SampleFrames(clip_len, 2, num_clips)``, ``Resize(-1, size)``,
    ``ThreeCrop(size)``)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    inds = mmaction2_test_frame_inds(len(frames), clip_len, 2, num_clips)  # (clips, clip_len)
    h, w = frames[0].shape[:2]
    scale = size / min(h, w)
    new_size = (int(w * scale + 0.5), int(h * scale + 0.5))  # mmcv rescale_size
    imgs = [cv2.resize(frames[i], new_size, interpolation=cv2.INTER_LINEAR) for i in inds.reshape(-1)]
    new_h, new_w = imgs[0].shape[:2]
    if new_h == size:  # ThreeCrop: left, right, middle (or top, bottom, middle)
        step = (new_w - size) // 2
        offsets = [(0, 0), (2 * step, 0), (step, 0)]
    else:
        step = (new_h - size) // 2
        offsets = [(0, 0), (0, 2 * step), (0, step)]
    cropped = np.stack([img[y : y + size, x : x + size] for x, y in offsets for img in imgs])  # crop-major
    views = cropped.reshape(3, num_clips, clip_len, size, size, 3).transpose(0, 1, 5, 2, 3, 4)  # FormatShape NCTHW
    return inds, np.ascontiguousarray(views.reshape(3 * num_clips, 3, clip_len, size, size))


def fused_reference(views: np.ndarray, mm_state, chunks: int = 1) -> np.ndarray:
    """``average_clips='prob'``: the mean of the views' softmax, through the functional forward."""
    with torch.inference_mode():
        parts = [reference_forward(normalize(torch.from_numpy(v)), mm_state) for v in np.split(views, chunks)]
    logits = torch.cat(parts)
    return torch.softmax(logits.double(), dim=1).mean(dim=0).numpy()


@pytest.fixture(scope="module")
def v1_checkpoint(tmp_path_factory, mm_state):
    """The synthetic state dict under the 1.x checkpoint's published file name."""
    path = tmp_path_factory.mktemp("v1") / I3D_NL_DOT_PRODUCT_R50_K400_V1.filename
    torch.save({"state_dict": mm_state, "meta": {"mmaction2_version": "1.0.0"}}, path)
    return path


@pytest.mark.parametrize("name", ["bikes", "carphone_pristine"])
def test_library_1x_equals_mmaction2_1x_small(v1_checkpoint, mm_state, sample_videos, name):
    """The same pipeline on a reduced shape (10 clips x 8 frames, 64 px): frame indices and probabilities."""
    weights, _ = choose_weights(v1_checkpoint)
    small = replace(weights, preprocessing=replace(weights.preprocessing, clip_len=8, size=64))
    prediction = Predictor.create(v1_checkpoint, weights=small).predict(sample_videos[name], protocol="threecrop")
    inds, views = mmaction2_1x_views(sample_videos[name], clip_len=8, size=64)
    assert np.array_equal(prediction.frame_indices, inds)
    np.testing.assert_allclose(prediction.scores, fused_reference(views, mm_state), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_predict_1x_checkpoint_equals_mmaction2_1x(v1_checkpoint, mm_state, sample_videos, capsys):
    video = sample_videos["carphone_pristine"]  # 176x144, 120 frames: the 1.x offsets differ from 0.x's
    code = main(["predict", str(video), "--checkpoint", str(v1_checkpoint), "--protocol", "centercrop", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{v1_checkpoint.name} is mmaction2's {I3D_NL_DOT_PRODUCT_R50_K400_V1.name}: 1.x sampling" in err
    record = json.loads(out)
    assert record["video"] == str(video) and record["protocol"] == "centercrop" and record["num_frames"] == 120
    assert len(record["scores"]) == 400 and abs(sum(record["scores"]) - 1) < 1e-6
    assert [t["index"] for t in record["topk"]] == np.argsort(record["scores"])[::-1][:5].tolist()
    inds, views = mmaction2_1x_views(video)
    assert record["frame_indices"] == inds.tolist()
    assert inds[:, 0].tolist() == [0, 6, 13, 19, 25, 32, 38, 44, 51, 57]
    centre = views[20:]  # ThreeCrop's third crop is CenterCrop's (both at (W - 256) // 2): 10 views, not 30
    np.testing.assert_allclose(record["scores"], fused_reference(centre, mm_state, chunks=2), rtol=0, atol=1e-5)


def test_sampling_flag_and_recognition(v1_checkpoint, checkpoint_file, tmp_path, capsys):
    """--sampling overrides the checkpoint's, said once; the seed's file name, an unknown file and none get 0.x."""
    assert choose_weights(v1_checkpoint)[0].preprocessing.sampling == "1.x"
    assert choose_weights(v1_checkpoint, "0.x")[0].preprocessing.sampling == "0.x"
    renamed = tmp_path / "my_copy-8e1f2148.pth"  # the sha256 prefix in the name is enough
    assert choose_weights(renamed)[0] is I3D_NL_DOT_PRODUCT_R50_K400_V1
    seed_named = tmp_path / I3D_NL_DOT_PRODUCT_R50_K400.filename
    assert choose_weights(seed_named)[0] is I3D_NL_DOT_PRODUCT_R50_K400
    weights, note = choose_weights(checkpoint_file)
    assert weights is I3D_NL_DOT_PRODUCT_R50_K400 and note is None
    assert choose_weights(None) == (I3D_NL_DOT_PRODUCT_R50_K400, None)
    assert Predictor.create(v1_checkpoint).weights is I3D_NL_DOT_PRODUCT_R50_K400_V1  # the library picks it too
    assert Predictor.create(checkpoint_file).weights is I3D_NL_DOT_PRODUCT_R50_K400
    missing = str(tmp_path / "missing.mp4")
    assert main(["predict", missing, "--checkpoint", str(v1_checkpoint), "--sampling", "0.x"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"i3d: {v1_checkpoint.name} is mmaction2's {I3D_NL_DOT_PRODUCT_R50_K400_V1.name}: 1.x sampling "
        "(--sampling 0.x)",
        f"i3d: {missing}: no such file",
        "i3d: 1 of 1 videos failed",
    ]
    assert main(["predict", missing, "--checkpoint", str(checkpoint_file), "--sampling", "1.x"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"i3d: {missing}: no such file"  # an unknown file: no note
