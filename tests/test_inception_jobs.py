"""The Inception models through predict, eval and features: the whole video as one input, windows for features,
DeepMind's preprocessing (short side 256 bilinear, centre 224, x / 127.5 - 1) built here from OpenCV directly."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from i3d_infer.cli import main
from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.weights import find_weights, read_labels
from inception_reference import pytorch_i3d_state, random_variables, write_bundle
from videos import write_video

TOLERANCE = 1e-5  # relative to the largest value


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """The same synthetic RGB weights as DeepMind's bundle and as pytorch-i3d's .pt."""
    root = tmp_path_factory.mktemp("inception")
    variables = random_variables(seed=7)
    bundle = write_bundle(root / "rgb_imagenet" / "model.ckpt", variables)
    torch.save(pytorch_i3d_state(variables, "RGB/inception_i3d/"), root / "rgb_imagenet.pt")
    return {"deepmind-tf": bundle, "pytorch-i3d": root / "rgb_imagenet.pt"}


def inception_input(path) -> np.ndarray:
    """Every frame read by OpenCV, short side 256 (``int(x * s + 0.5)``, INTER_LINEAR), centre 224, RGB, [-1, 1]:
    ``(1, 3, T, 224, 224)`` float32 (``../shared/reference/inception.md`` §3)."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        scale = 256 / min(h, w)
        frame = cv2.resize(frame, (int(w * scale + 0.5), int(h * scale + 0.5)), interpolation=cv2.INTER_LINEAR)
        h, w = frame.shape[:2]
        y, x = (h - 224) // 2, (w - 224) // 2
        frames.append(frame[y : y + 224, x : x + 224, ::-1])
    video = np.stack(frames).astype(np.float32) / 127.5 - 1  # (T, 224, 224, 3)
    return video.transpose(3, 0, 1, 2)[None]  # -> (1, 3, T, 224, 224)


def network_on(checkpoint, video: np.ndarray) -> dict:
    model = load_model(checkpoint, find_weights("rgb_imagenet")).network  # equal to DeepMind's: test_model_inception
    with torch.inference_mode():
        return {k: v.numpy() for k, v in model.endpoints(torch.from_numpy(video)).items()}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.parametrize("layout", ["deepmind-tf", "pytorch-i3d"])
def test_predict_runs_the_whole_video(checkpoints, sample_videos, capsys, layout):
    video = sample_videos["carphone_pristine"]
    assert main(["predict", str(video), "--checkpoint", str(checkpoints[layout]), "--json"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert f"({'rgb_imagenet' if layout == 'deepmind-tf' else 'pytorch-i3d rgb_imagenet'}, {layout} layout)" in err
    assert record["protocol"] == "centercrop" and record["frame_indices"] == [list(range(120))]
    expected = softmax(network_on(checkpoints["deepmind-tf"], inception_input(video))["logits"][0])
    assert np.abs(np.array(record["scores"]) - expected).max() < TOLERANCE
    labels = read_labels(weights=find_weights("rgb_imagenet"))
    assert record["topk"][0]["label"] == labels[int(np.argmax(expected))]  # DeepMind's names ("playing cricket")


def test_features_are_the_network_on_each_window(checkpoints, sample_videos, tmp_path):
    video = sample_videos["carphone_pristine"]
    args = ["features", str(video), "--checkpoint", str(checkpoints["deepmind-tf"]), "--out-dir", str(tmp_path)]
    assert main([*args, "--window", "16", "--stride", "4"]) == 0
    features = np.load(tmp_path / "carphone_pristine.npy")
    assert features.shape == ((120 - 16) // 4 + 1, 1024)  # start-aligned, the incomplete tail dropped
    frames = inception_input(video)
    for k in (0, 13, 26):
        expected = network_on(checkpoints["deepmind-tf"], frames[:, :, 4 * k : 4 * k + 16])["features"][0]
        assert np.abs(features[k] - expected).max() / np.abs(expected).max() < TOLERANCE, k
    index = json.loads((tmp_path / "index.jsonl").read_text().splitlines()[0])
    assert index["clips"]["first"][-1] == 104 and index["clips"]["last"][-1] == 119
    # ActionFormer's THUMOS14 grid (actionformer_release libs/datasets/thumos14.py): feature k sits at frame
    # (seconds · fps − 0.5 · num_frames) / feat_stride = k, i.e. at the window's centre frame 4k + 8
    assert index["clips"]["centre"] == [4 * k + 8 for k in range(27)]
    assert main([*args, "--window", "50", "--stride", "50", "--tail", "pad", "--out-dir", str(tmp_path / "pad")]) == 0
    assert np.load(tmp_path / "pad" / "carphone_pristine.npy").shape == (2, 1024)  # 0-49, 50-99; 100-119 centre 125


def test_eval_and_the_too_short_video(checkpoints, sample_videos, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "carphone.mp4").symlink_to(sample_videos["carphone_pristine"])
    write_video(videos / "eight_frames.mp4", list(range(8)), width=80, height=120)
    write_video(videos / "forty.mp4", list(range(40)), width=80, height=120)
    (tmp_path / "list.txt").write_text("carphone.mp4 3\neight_frames.mp4 1\nforty.mp4 2\n")
    out = tmp_path / "run"
    argv = ["eval", "--list", str(tmp_path / "list.txt"), "--root", str(videos), "--out-dir", str(out)]
    assert main([*argv, "--checkpoint", str(checkpoints["pytorch-i3d"]), "--workers", "1"]) == 0
    result = np.array(json.loads((out / "result.json").read_text()))
    expected = softmax(network_on(checkpoints["deepmind-tf"], inception_input(videos / "forty.mp4"))["logits"][0])
    assert np.abs(result[2] - expected).max() < TOLERANCE
    failures = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert any("8 frames, fewer than the 9 the network takes" in json.dumps(r) for r in failures)


def test_onnx_export_keeps_same_padding_on_a_dynamic_time_axis(checkpoints, sample_videos, tmp_path, capsys):
    out = tmp_path / "inception.onnx"
    args = ["export", "--checkpoint", str(checkpoints["deepmind-tf"]), "--output", str(out), "--dynamic-time"]
    assert main([*args, "--shape", "1", "1", "3", "16", "224", "224", "--output-kind", "features"]) == 0
    assert capsys.readouterr().out.strip().endswith("OK")  # verified against eager on a real video
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out))
    for frames in (9, 10, 13, 24):  # odd and even lengths pad differently (SAME)
        video = np.random.default_rng(frames).integers(0, 256, (1, 1, 3, frames, 224, 224), dtype=np.uint8)
        expected = load_model(checkpoints["deepmind-tf"], find_weights("rgb_imagenet")).features_only()
        with torch.inference_mode():
            expected = expected(torch.from_numpy(video[0])).numpy()
        got = session.run(None, {"video": video})[0]
        assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4, frames
    video = sample_videos["carphone_pristine"]
    assert main(["features", str(video), "--backend", "onnxruntime", "--model", str(out), "--window", "16",
                 "--stride", "52", "--out-dir", str(tmp_path / "f")]) == 0  # fmt: skip
    assert "inception.onnx was exported from Inception-v1 I3D rgb (rgb_imagenet" in capsys.readouterr().err
    frames = inception_input(video)
    expected = network_on(checkpoints["deepmind-tf"], frames[:, :, 52:68])["features"][0]
    got = np.load(tmp_path / "f" / "carphone_pristine.npy")[1]
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4


def test_fps_resamples_by_timestamp_before_the_windows(checkpoints, tmp_path):
    video = write_video(tmp_path / "thirty.mp4", list(range(90)), rate=30)  # 3 s at 30 fps
    out = tmp_path / "f"
    args = ["features", str(video), "--checkpoint", str(checkpoints["pytorch-i3d"]), "--out-dir", str(out)]
    assert main([*args, "--fps", "10", "--window", "9", "--stride", "9"]) == 0
    features = np.load(out / "thirty.npy")
    assert features.shape == (3, 1024)  # 30 frames at 10 fps: frame k is source frame 3k
    frames = inception_input(video)[:, :, ::3]
    expected = network_on(checkpoints["deepmind-tf"], frames[:, :, 9:18])["features"][0]
    assert np.abs(features[1] - expected).max() / np.abs(expected).max() < TOLERANCE
    index = json.loads((out / "index.jsonl").read_text())
    assert index["clips"]["first_seconds"] == [0.0, 0.9, 1.8] and json.loads((out / "features.json").read_text())[
        "fps"
    ] == pytest.approx(10.0)


def test_bench_times_the_whole_video_view(checkpoints, tmp_path):
    out = tmp_path / "bench.json"
    argv = ["bench", "--checkpoint", str(checkpoints["pytorch-i3d"]), "--iters", "1", "--warmup", "1"]
    assert main([*argv, "--shape", "1", "3", "9", "193", "193", "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["input_shape"] == [1, 3, 9, 193, 193]
    assert find_weights("rgb_imagenet").preprocessing.view_shape == (1, 3, 250, 224, 224)  # the default: 10 s, 25 fps


def test_five_crops(checkpoints, sample_videos, tmp_path):
    video = sample_videos["carphone_pristine"]  # 176x144 -> 313x256: corners 89 and 32 pixels apart
    args = ["features", str(video), "--checkpoint", str(checkpoints["deepmind-tf"]), "--protocol", "fivecrop"]
    assert main([*args, "--window", "16", "--stride", "104", "--out-dir", str(tmp_path)]) == 0
    each = np.load(tmp_path / "carphone_pristine.npy")
    assert each.shape == (2, 5, 1024)  # windows at 0 and 104, a feature per crop (--views mean: their mean)
    capture, frames = cv2.VideoCapture(str(video)), []
    while (read := capture.read())[0]:
        frames.append(cv2.resize(read[1], (313, 256), interpolation=cv2.INTER_LINEAR))
    clip = np.stack(frames[104:120])[:, :, :, ::-1].astype(np.float32) / 127.5 - 1  # (16, 256, 313, 3) RGB
    for crop, (x, y) in enumerate([(0, 0), (89, 0), (0, 32), (89, 32), (44, 16)]):  # torchvision's FiveCrop order
        view = clip[:, y : y + 224, x : x + 224].transpose(3, 0, 1, 2)[None]
        expected = network_on(checkpoints["deepmind-tf"], np.ascontiguousarray(view))["features"][0]
        assert np.abs(each[1, crop] - expected).max() / np.abs(expected).max() < TOLERANCE, crop


def test_the_flow_stream_is_refused_with_its_reason(sample_videos, tmp_path, capsys):
    bundle = write_bundle(tmp_path / "flow_imagenet" / "model.ckpt", random_variables("variables_flow_imagenet"))
    assert main(["predict", str(sample_videos["carphone_pristine"]), "--checkpoint", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "flow_imagenet is the flow stream (2-channel optical flow in): give it as --flow-checkpoint" in err


def test_ten_crops_are_the_five_and_those_of_the_mirrored_frame(tmp_path):
    from i3d_infer.data.transforms import get_protocol, make_views

    clips = np.random.default_rng(0).integers(0, 256, (2, 3, 256, 313, 3), dtype=np.uint8)  # (clips, T, H, W, 3)
    five = make_views(clips, get_protocol("fivecrop"), 224)
    ten = make_views(clips, get_protocol("tencrop"), 224)
    mirrored = make_views(np.ascontiguousarray(clips[:, :, :, ::-1]), get_protocol("fivecrop"), 224)
    assert ten.shape == (20, 3, 3, 224, 224)  # crop-major: 10 crops x 2 clips
    np.testing.assert_array_equal(ten[:10], five)
    np.testing.assert_array_equal(ten[10:], mirrored)  # torchvision TenCrop: five_crop(img) + five_crop(hflip(img))
    np.testing.assert_array_equal(ten[10], clips[0].transpose(3, 0, 1, 2)[:, :, :224, ::-1][:, :, :, :224])
    (tmp_path / "list.txt").write_text("a.mp4 0\n")
    assert main(["eval", "--list", str(tmp_path / "list.txt"), "--root", str(tmp_path), "--out-dir",
                 str(tmp_path / "run"), "--protocol", "tencrop"]) == 2  # fmt: skip
