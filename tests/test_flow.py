"""TV-L1 flow images of ``i3d extract --task flow|both`` against the reference tools' way, transcribed here:
mmaction2's ``tools/misc/flow_extraction.py`` (read until failure, gray, no resize, TV-L1 defaults, ``flow_to_img``,
``x_00001.jpg``) and denseflow as ``build_rawframes.py`` calls it (gray, ``get_new_size`` shrink, rounding
``convertFlowToImage``, ``flow_x_00000.jpg``), both JPEG quality 95."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from i3d_infer.cli import main
from i3d_infer.data.flow import FlowMethod, denseflow_size


def bgr_frames(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def first_frames(source: Path, out: Path, count: int) -> Path:
    """The first ``count`` frames of ``source`` re-encoded (MPEG-4 part 2), as a short test video of its size."""
    frames = bgr_frames(source)[:count]
    with av.open(str(out), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"qscale": "2"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame[:, :, ::-1].copy(), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def mmaction2_flow_extraction(video: Path, dest: Path, bound: float = 20.0, start_idx: int = 1) -> None:
    """``extract_dense_flow(path, dest, bound, start_idx=1)`` of mmaction2's tools/misc/flow_extraction.py."""

    def flow_to_img(raw_flow):
        flow = np.clip(raw_flow, -bound, bound)
        flow += bound
        flow *= 255 / float(2 * bound)
        return flow.astype(np.uint8)

    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in bgr_frames(video)]
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    flow = [tvl1.calc(x, y, None) for x, y in itertools.pairwise(gray)]
    dest.mkdir(parents=True)
    for i, f in enumerate(flow):
        cv2.imwrite(str(dest / f"x_{i + start_idx:05d}.jpg"), flow_to_img(f[:, :, 0]))
        cv2.imwrite(str(dest / f"y_{i + start_idx:05d}.jpg"), flow_to_img(f[:, :, 1]))


def denseflow_way(video: Path, dest: Path, bound: float = 20.0, short: int = 256) -> None:
    """denseflow's CPU-reproducible steps (its TV-L1 is CUDA's; the CPU one stands in): gray, shrink, flow, clamp,
    ``cvRound(255 · (v + B) / 2B)`` half to even, ``flow_x_00000.jpg``."""
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in bgr_frames(video)]
    h, w = gray[0].shape
    if min(w, h) > short:  # get_new_size: never up; long side round(long / short_side * short), half away from 0
        size = (short, int(h / w * short + 0.5)) if w < h else (int(w / h * short + 0.5), short)
        gray = [cv2.resize(g, size, interpolation=cv2.INTER_LINEAR) for g in gray]
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    dest.mkdir(parents=True)
    for i, (x, y) in enumerate(itertools.pairwise(gray)):
        flow = tvl1.calc(x, y, None).astype(np.float64)
        for axis, v in zip("xy", (flow[:, :, 0], flow[:, :, 1]), strict=True):
            image = np.where(v > bound, 255, np.where(v < -bound, 0, np.round(255 * (v + bound) / (2 * bound))))
            cv2.imwrite(str(dest / f"flow_{axis}_{i:05d}.jpg"), image.astype(np.uint8))


def same_files(ours: Path, reference: Path) -> None:
    names = sorted(p.name for p in reference.iterdir())
    assert sorted(p.name for p in ours.iterdir() if not p.name.startswith("img_")) == names
    for name in names:
        assert (ours / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.fixture(scope="module")
def videos(tmp_path_factory, sample_videos):
    root = tmp_path_factory.mktemp("flow")
    (root / "in").mkdir()
    first_frames(sample_videos["carphone_pristine"], root / "in" / "carphone.mp4", 6)  # 176x144: native size
    first_frames(sample_videos["bikes"], root / "in" / "bikes.mp4", 3)  # 640x272: denseflow shrinks to 602x256
    return root


@pytest.mark.parametrize("layout", ["mmaction2-cpu", "denseflow"])
def test_flow_images_are_the_tools_bytes(videos, tmp_path, layout):
    out = tmp_path / "out"
    args = ["extract", str(videos / "in"), str(out), "--task", "both", "--flow-layout", layout, "--workers", "2"]
    assert main(args) == 0
    for name in ("carphone", "bikes"):
        reference = tmp_path / "reference" / name
        (mmaction2_flow_extraction if layout == "mmaction2-cpu" else denseflow_way)(videos / "in" / f"{name}.mp4",
                                                                                  reference)  # fmt: skip
        same_files(out / name, reference)
        frames = len(list((out / name).glob("img_*.jpg")))
        assert len(list(reference.iterdir())) == 2 * (frames - 1)  # N frames, N - 1 fields of x and y
    report = json.loads((out / "extract_report.json").read_text())
    assert report["extracted"] == 2 and not report["failed"]


def test_denseflow_size_and_the_algorithm_record():
    assert denseflow_size(640, 272, 256) == (602, 256)
    assert denseflow_size(176, 144, 256) == (176, 144)  # never up
    assert denseflow_size(270, 480, 256) == (256, 455)  # portrait: the long side 480 / 270 * 256 = 455.1
    record = FlowMethod().describe()
    assert record["opencv"] == cv2.__version__ and record["Tau"] == 0.25 and record["MedianFiltering"] == 5


def inception_inputs(video: Path, crop: tuple[int, int] = (44, 16)) -> tuple[np.ndarray, np.ndarray]:
    """inception.md §3 built from OpenCV calls for a 176x144 video: RGB short side 256 (313x256), the crop at ``(x,
    y)`` (default: the centre 224), [-1, 1]; TV-L1 on the gray frames at that size, clip(v, -20, 20) / 20, the same
    crop: (1, 3, N, ...), (1, 2, N - 1, ...)."""
    (x, y), (frames, fields) = crop, resized_inputs(video)
    rgb = frames[:, y : y + 224, x : x + 224, ::-1].astype(np.float32).transpose(3, 0, 1, 2)[None] / 127.5 - 1
    return rgb, fields[:, y : y + 224, x : x + 224].astype(np.float32).transpose(3, 0, 1, 2)[None]


@functools.cache
def resized_inputs(video: Path) -> tuple[np.ndarray, np.ndarray]:
    """The BGR frames resized to 313x256 and the TV-L1 fields of their gray frames, clip(v, -20, 20) / 20."""
    frames, gray = [], []
    for frame in bgr_frames(video):
        frames.append(cv2.resize(frame, (313, 256), interpolation=cv2.INTER_LINEAR))
        gray.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (313, 256), interpolation=cv2.INTER_LINEAR))
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return np.stack(frames), np.stack(
        [np.clip(tvl1.calc(a, b, None), -20, 20) / 20 for a, b in itertools.pairwise(gray)]
    )


def read_back(directory: Path, names: str, count: int, first: int) -> np.ndarray:
    """pytorch-i3d's ``load_flow_frames``, at our RGB stream's size: x/y JPEGs gray, resized to 313x256
    (INTER_LINEAR), ``u8 / 255 · 2 − 1``, centre 224: (1, 2, count, 224, 224)."""
    fields = []
    for i in range(first, first + count):
        pair = [cv2.imread(str(directory / names.format(axis, i)), cv2.IMREAD_GRAYSCALE) for axis in "xy"]
        pair = [cv2.resize(image, (313, 256), interpolation=cv2.INTER_LINEAR) / 255.0 * 2 - 1 for image in pair]
        fields.append(np.stack(pair, axis=2)[16:240, 44:268])
    return np.stack(fields).astype(np.float32).transpose(3, 0, 1, 2)[None]


@pytest.fixture(scope="module")
def two_streams(tmp_path_factory, sample_videos):
    """A 12-frame 176x144 video, synthetic RGB and flow bundles, and the networks' endpoints on every input."""
    import torch

    from i3d_infer.model.checkpoint import load_model
    from i3d_infer.model.weights import find_weights
    from inception_reference import random_variables, write_bundle

    root = tmp_path_factory.mktemp("two_streams")
    video = first_frames(sample_videos["carphone_pristine"], root / "twelve.mp4", 12)  # 11 flow fields
    rgb = write_bundle(root / "rgb_imagenet" / "model.ckpt", random_variables(seed=5))
    flow = write_bundle(root / "flow_imagenet" / "model.ckpt", random_variables("variables_flow_imagenet", seed=6))
    streams = ((rgb, "rgb_imagenet"), (flow, "flow_imagenet"))
    nets = [load_model(path, find_weights(name)).network for path, name in streams]

    def endpoints(stream: int, x: np.ndarray) -> dict:  # stream 0: RGB, 1: flow
        with torch.inference_mode():
            return {k: v[0].double().numpy() for k, v in nets[stream].endpoints(torch.from_numpy(x)).items()}

    return video, rgb, flow, inception_inputs(video), endpoints


def two_stream_scores(endpoints, rgb_input: np.ndarray, flow_input: np.ndarray) -> dict[str, np.ndarray]:
    """DeepMind's evaluate_sample.py: softmax of each stream's logits and of their sum."""
    rgb, flow = endpoints(0, rgb_input)["logits"], endpoints(1, flow_input)["logits"]
    return {"rgb": softmax(rgb), "flow": softmax(flow), "rgb+flow": softmax(rgb + flow)}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def test_two_stream_predict_is_softmax_of_summed_logits(two_streams, capsys):
    video, rgb, flow, (rgb_input, flow_input), endpoints = two_streams
    assert main(["predict", str(video), "--checkpoint", str(rgb), "--flow-checkpoint", str(flow), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["streams"] == "rgb+flow"
    expected = softmax(endpoints(0, rgb_input)["logits"] + endpoints(1, flow_input)["logits"])
    assert np.abs(np.array(record["scores"]) - expected).max() < 1e-5


def test_two_stream_features_concatenate_each_window(two_streams, tmp_path):
    video, rgb, flow, (rgb_input, flow_input), endpoints = two_streams
    args = ["features", str(video), "--checkpoint", str(rgb), "--flow-checkpoint", str(flow), "--scores"]
    assert main([*args, "--window", "9", "--stride", "2", "--out-dir", str(tmp_path)]) == 0
    features, scores = np.load(tmp_path / "twelve.npy"), np.load(tmp_path / "twelve.scores.npy")
    assert features.shape == (2, 2048)  # windows need frames and fields [2k, 2k + 9): 2k + 9 <= 11
    rgb_window, flow_window = endpoints(0, rgb_input[:, :, 2:11]), endpoints(1, flow_input[:, :, 2:11])
    expected = np.concatenate([rgb_window["features"], flow_window["features"]])  # RGB first (TAL order)
    assert np.abs(features[1] - expected).max() / np.abs(expected).max() < 1e-5
    fused = softmax(rgb_window["logits"] + flow_window["logits"])  # one head on both: DeepMind's fusion
    assert np.abs(scores[1] - fused).max() < 1e-5
    assert json.loads((tmp_path / "features.json").read_text())["flow"]["opencv"] == cv2.__version__


def test_flow_as_float_fields(videos, tmp_path):
    out = tmp_path / "out"
    args = ["extract", str(videos / "in"), str(out), "--task", "flow", "--flow-layout", "mmaction2-cpu"]
    assert main([*args, "--flow-format", "npy", "--ext", "mp4", "--workers", "1"]) == 0
    fields = np.load(out / "carphone" / "carphone.flow.npy")
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in bgr_frames(videos / "in" / "carphone.mp4")]
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    expected = np.stack([tvl1.calc(a, b, None) for a, b in itertools.pairwise(gray)])  # native size, in pixels
    assert fields.dtype == np.float32 and fields.shape == (5, 144, 176, 2)
    np.testing.assert_array_equal(fields, expected)
    assert sorted(p.name for p in (out / "carphone").iterdir()) == ["carphone.flow.npy"]


def test_two_stream_eval_reports_each_stream_and_the_fusion(two_streams, tmp_path, capsys):
    video, rgb, flow, inputs, endpoints = two_streams
    ten = first_frames(video, tmp_path / "ten.mp4", 10)  # 9 flow fields: the shortest input the network takes
    expected = [two_stream_scores(endpoints, *inputs), two_stream_scores(endpoints, *inception_inputs(ten))]
    labels = [int(np.argmax(expected[0]["rgb"])), int(np.argmax(expected[1]["flow"]))]  # each stream right once
    (tmp_path / "val.txt").write_text(f"twelve.mp4 {labels[0]}\nten.mp4 {labels[1]}\nmissing.mp4 1\n")
    (tmp_path / "twelve.mp4").symlink_to(video)
    args = ["eval", "--list", str(tmp_path / "val.txt"), "--root", str(tmp_path), "--checkpoint", str(rgb)]
    assert main([*args, "--flow-checkpoint", str(flow), "--out-dir", str(tmp_path / "run")]) == 0
    results = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    for result, scores in zip(results, expected, strict=False):
        assert np.abs(np.array(result["scores"]) - scores["rgb+flow"]).max() < 1e-5
        for stream in ("rgb", "flow"):
            assert np.abs(np.array(result["streams"][stream]) - scores[stream]).max() < 1e-5
        assert result["decoder"] == "opencv + flow TV-L1"
    assert results[2]["error"] and "streams" not in results[2]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for stream in ("rgb", "flow", "rgb+flow"):  # three rows from one pass; the missing video counts as wrong
        hits = sum(int(np.argmax(scores[stream])) == label for scores, label in zip(expected, labels, strict=True))
        assert metrics["streams"][stream]["top1_acc"] == hits / 3
    assert metrics["streams"]["rgb"]["top1_acc"] >= 1 / 3 and metrics["streams"]["flow"]["top1_acc"] >= 1 / 3
    assert metrics["streams"]["rgb+flow"] == metrics["all_videos"]
    out = capsys.readouterr().out
    assert "stream\ttop1_acc\ttop5_acc\tmean_class_accuracy" in out and "\nflow\t" in out
    assert "flow stream alone" in (tmp_path / "run" / "report.html").read_text()


def test_two_stream_views_share_their_crops(two_streams, capsys):
    video, rgb, flow, _, endpoints = two_streams
    args = ["predict", str(video), "--checkpoint", str(rgb), "--flow-checkpoint", str(flow), "--json"]
    assert main([*args, "--protocol", "fivecrop"]) == 0
    record = json.loads(capsys.readouterr().out)
    crops = [(0, 0), (89, 0), (0, 32), (89, 32), (44, 16)]  # FiveCrop of 313x256: corners, then the centre
    expected = np.mean([two_stream_scores(endpoints, *inception_inputs(video, xy))["rgb+flow"] for xy in crops], 0)
    assert np.abs(np.array(record["scores"]) - expected).max() < 1e-5


def test_two_streams_read_flow_images_back(two_streams, tmp_path, capsys):
    """Rawframes of `i3d extract --task both` (denseflow layout; 176x144 is not shrunk): the RGB images and the flow
    images read back as pytorch-i3d reads them, at the RGB stream's size (upscaled to 313x256 like the frames)."""
    video, rgb, flow, _, endpoints = two_streams
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "twelve.mp4").symlink_to(video)
    args = ["extract", str(tmp_path / "in"), str(tmp_path / "raw"), "--task", "both", "--short-side", "256"]
    assert main([*args, "--workers", "1"]) == 0  # RGB images 313x256, flow images 176x144
    capsys.readouterr()
    frames = tmp_path / "raw" / "twelve"
    images = [cv2.imread(str(frames / f"img_{i:05d}.jpg")) for i in range(1, 13)]
    resized = [cv2.resize(f, (313, 256), interpolation=cv2.INTER_LINEAR)[16:240, 44:268, ::-1] for f in images]
    rgb_input = np.stack(resized).astype(np.float32).transpose(3, 0, 1, 2)[None] / 127.5 - 1
    flow_input = read_back(frames, "flow_{}_{:05d}.jpg", 11, 0)
    args = ["predict", str(frames), "--checkpoint", str(rgb), "--flow-checkpoint", str(flow), "--json"]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["decoder"] == "rawframes + flow denseflow images"
    expected = two_stream_scores(endpoints, rgb_input, flow_input)["rgb+flow"]
    assert np.abs(np.array(record["scores"]) - expected).max() < 1e-5
    computed = inception_inputs(video)[1]  # the same fields unquantised: within JPEG's and the quantiser's error
    assert np.abs(flow_input - computed).mean() < 0.02
    args = ["features", str(frames), "--checkpoint", str(rgb), "--flow-checkpoint", str(flow), "--window", "9"]
    assert main([*args, "--stride", "2", "--out-dir", str(tmp_path / "features")]) == 0  # streamed windows
    features = np.load(tmp_path / "features" / "twelve.npy")
    window = [endpoints(k, x[:, :, 2:11])["features"] for k, x in enumerate((rgb_input, flow_input))]
    assert np.abs(features[1] - np.concatenate(window)).max() / np.abs(features[1]).max() < 1e-5


def test_flow_images_of_either_layout_read_back(tmp_path):
    from i3d_infer.data.flow import FLOW_LAYOUTS, flow_images

    rng = np.random.default_rng(0)
    for layout in FLOW_LAYOUTS.values():
        directory = tmp_path / layout.name
        directory.mkdir()
        for i, axis in itertools.product(range(3), "xy"):
            name = layout.pattern.format(axis, layout.first_index + i)
            cv2.imwrite(str(directory / name), rng.integers(0, 256, (144, 176), dtype=np.uint8))
        fields, origin = flow_images(directory, (313, 256))
        assert origin == f"{layout.name} images" and fields.shape == (3, 256, 313, 2)
        reference = read_back(directory, layout.pattern, 3, layout.first_index)  # its centre crop
        np.testing.assert_array_equal(fields[None, :, 16:240, 44:268].transpose(0, 4, 1, 2, 3), reference)
    with pytest.raises(Exception, match="no flow images"):
        flow_images(tmp_path, (313, 256))


def test_mirrored_views_mirror_the_flow():
    from i3d_infer.data.transforms import get_protocol, make_views

    field = np.random.default_rng(1).standard_normal((1, 4, 256, 300, 2)).astype(np.float32)
    views = make_views(field, get_protocol("tencrop"), 224)  # 5 crops, then the same of the flipped frames
    x, y = 38, 16  # the centre crop of 300x256
    flipped = field[0, :, y : y + 224, ::-1][:, :, x : x + 224]
    np.testing.assert_array_equal(views[9, 0], -flipped[..., 0])  # x flips sign with the frame: right is left
    np.testing.assert_array_equal(views[9, 1], flipped[..., 1])


def test_a_killed_flow_extraction_resumes_to_the_same_bytes(videos, tmp_path, monkeypatch):
    import os

    import i3d_infer.prepare.extract as extract_module
    from i3d_infer.prepare.extract import ExtractOptions, extract_all

    options = ExtractOptions(task="both", flow_layout="mmaction2-cpu")
    quiet = {"progress": False, "log": lambda _: None}
    extract_all(videos / "in", tmp_path / "reference", options, workers=2, **quiet)
    original = extract_module.extract_video

    def dies_mid_flow(video, out_dir, options, **kwargs):
        if Path(video).name == "bikes.mp4":  # killed after its first flow images
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(Path(out_dir) / "x_00001.jpg"), np.zeros((8, 8), np.uint8))
            os._exit(9)
        return original(video, out_dir, options, **kwargs)

    monkeypatch.setattr(extract_module, "extract_video", dies_mid_flow)  # the workers are forked: they see it
    report = extract_all(videos / "in", tmp_path / "out", options, workers=2, **quiet)
    assert [Path(f["video"]).name for f in report.failed] == ["bikes.mp4"] and not (tmp_path / "out" / "bikes").exists()
    monkeypatch.setattr(extract_module, "extract_video", original)
    report = extract_all(videos / "in", tmp_path / "out", options, workers=2, **quiet)
    assert (report.extracted, report.skipped, report.failed) == (1, 1, [])
    files = {p.relative_to(tmp_path / "reference"): p.read_bytes() for p in (tmp_path / "reference").rglob("*.jpg")}
    assert files == {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*.jpg")}
    assert any(p.name.startswith("x_") for p in files)


def test_flow_options_without_flow_are_refused(tmp_path, capsys):
    assert main(["predict", "v.mp4", "--flow", "torch"]) == 2
    assert capsys.readouterr().err.strip() == "i3d: error: --flow is for two streams (--flow-checkpoint)"
    assert main(["extract", str(tmp_path), str(tmp_path / "out"), "--flow", "torch"]) == 2
    assert capsys.readouterr().err.strip().endswith("--flow is for --task flow|both")
