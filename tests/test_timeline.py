"""``i3d predict --timeline``: a window every --clip-interval frames with its top-k, as JSON, CSV and a picture, and
drawn on every frame with --annotate; the windows are ``i3d features``' dense clips and their probabilities the
reference's."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from i3d_infer.annotate import annotate
from i3d_infer.cli import main
from i3d_infer.data.sampling import DenseClips
from i3d_infer.features.plan import FeaturePlan
from i3d_infer.features.timeline import predict_timeline
from i3d_infer.predict import Predictor
from reduced import SMALL
from test_features import DENSE, reference_features


def test_timeline_json_csv_and_picture(tmp_path, sample_videos, checkpoint_file, mm_state, small_weights, capsys):
    video = sample_videos["carphone_pristine"]  # 120 frames: windows centred on 8, 24, ..., 104
    out = tmp_path / "t.json"
    base = ["predict", str(video), "--checkpoint", str(checkpoint_file), "--protocol", "threecrop"]
    assert main([*base, "--timeline", str(out), "--topk", "3"]) == 0
    assert "timeline: " in capsys.readouterr().out
    record = json.loads(out.read_text())
    windows = record["windows"]
    assert [w["centre_frame"] for w in windows] == list(range(8, 120, 16))
    assert windows[0]["start_frame"] == 0 and windows[-1]["end_frame"] == 110
    assert windows[1]["centre_seconds"] == pytest.approx(24 / record["fps"])
    assert record["num_frames"] == 120 and record["decoder"] == "opencv"
    # each window's probabilities: the reference's features through the head, softmax, the three crops' mean
    features = reference_features(video, mm_state, "threecrop", DENSE)  # (windows, crops, 2048)
    logits = torch.from_numpy(features) @ mm_state["cls_head.fc_cls.weight"].double().T
    probs = torch.softmax(logits + mm_state["cls_head.fc_cls.bias"].double(), dim=-1).mean(dim=1).numpy()
    for window, expected in zip(windows, probs, strict=True):
        top = np.argsort(expected)[::-1][:3]
        assert [c["index"] for c in window["topk"]] == top.tolist()
        np.testing.assert_allclose([c["prob"] for c in window["topk"]], expected[top], rtol=1e-4)
    np.testing.assert_allclose([c["prob"] for c in record["video_topk"]], np.sort(probs.mean(0))[::-1][:3], rtol=1e-4)
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([*base, "--timeline", str(tmp_path / "t.csv"), "--topk", "2", "--clip-interval", "32"]) == 0
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [int(r["centre_frame"]) for r in rows] == [16, 48, 80, 112]
    assert list(rows[0])[-4:] == ["top1_label", "top1_prob", "top2_label", "top2_prob"]


def test_timeline_on_every_frame_of_the_annotated_video(tmp_path, sample_videos, checkpoint_file):
    predictor = Predictor.create(checkpoint_file, weights=SMALL)
    video = sample_videos["carphone_pristine"]
    plan = FeaturePlan(dense=DenseClips(8, 32, 2), protocol="seed")
    timeline = predict_timeline(predictor, video, plan, topk=3)
    result = annotate(predictor, video, tmp_path / "a.mp4", timeline=timeline, progress=False)
    assert result.frames == 120
    covered = set()
    for first, last in zip(timeline.result.clips["first"], timeline.result.clips["last"], strict=True):
        covered.update(range(first, last + 1))
    for index, boxes in enumerate(result.boxes):
        assert len(boxes) == (2 if index in covered else 1), index  # the window's top-3, and the video's


def test_timeline_errors(tmp_path, sample_videos, checkpoint_file, small_weights, capsys):
    video = str(sample_videos["carphone_pristine"])
    base = ["predict", "--checkpoint", str(checkpoint_file)]
    assert main([*base, video, video, "--timeline", str(tmp_path / "t.json")]) == 2
    assert main([*base, video, "--timeline", str(tmp_path / "t.txt")]) == 2
    (tmp_path / "broken.mp4").write_bytes(b"\0" * 50)
    assert main([*base, str(tmp_path / "broken.mp4"), "--timeline", str(tmp_path / "t.json")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert (
        "--timeline writes one video; got 2" in lines[0]
        and ".json or .csv" in lines[1]
        and "broken.mp4: cannot open" in lines[2]
    )
    assert len(lines) == 3 and not (tmp_path / "t.json").exists()
