"""The library API and ``i3d predict``: fused scores, JSON records, bad videos, bad checkpoints, offline default."""

from __future__ import annotations

import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch

from i3d_infer import Predictor, read_labels
from i3d_infer.cli import main
from mmaction_reference import normalize, reference_forward
from reduced import SMALL

# A reduced pipeline (2 clips x 8 frames at 64x64) keeps library tests fast; the CLI tests run full size.


def test_predictor_scores_equal_reference(checkpoint_file, mm_state, sample_videos):
    predictor = Predictor.create(checkpoint_file, weights=SMALL)
    prediction = predictor.predict(sample_videos["bikes"], protocol="threecrop", topk=3)
    assert prediction.num_frames == 250 and prediction.frame_indices.shape == (2, 8)
    from i3d_infer import read_video

    views = read_video(sample_videos["bikes"], "threecrop", SMALL.preprocessing).views  # (6, 3, 8, 64, 64)
    with torch.inference_mode():
        logits = reference_forward(normalize(torch.from_numpy(views)), mm_state)
    expected = torch.softmax(logits.double(), dim=1).mean(dim=0).numpy()
    np.testing.assert_allclose(prediction.scores, expected, rtol=1e-5, atol=1e-9)
    assert [c.index for c in prediction.topk] == np.argsort(expected)[::-1][:3].tolist()
    labels = read_labels()
    assert [c.label for c in prediction.topk] == [labels[c.index] for c in prediction.topk]


def test_label_map_is_sorted_kinetics400():
    labels = read_labels()
    assert len(labels) == 400 == len(set(labels))
    assert labels == sorted(labels) and all(" " not in name for name in labels)
    assert labels[0] == "abseiling" and labels[-1] == "zumba"
    assert "passing_American_football_(in_game)" in labels


def test_label_map_must_fit_the_model(checkpoint_file, tmp_path):
    label_map = tmp_path / "labels.txt"
    label_map.write_text("a\nb\nc\n")
    assert main(["predict", "x.mp4", "--checkpoint", str(checkpoint_file), "--label-map", str(label_map)]) == 2


def test_cli_bad_videos_are_one_line_each(checkpoint_file, tmp_path, capsys):
    """A missing file and a file that is no video: one line each naming it, the others go on, exit code 1. (A good
    video's --json record is checked in full size by test_mmaction2_1x.py.)"""
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    missing = tmp_path / "missing.mp4"
    code = main(["predict", str(missing), str(not_video), "--checkpoint", str(checkpoint_file), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"i3d: {missing}: no such file",
        f"i3d: {not_video}: cannot open as a video (Invalid data found when processing input)",
        "i3d: 2 of 2 videos failed",
    ]


@pytest.mark.slow
def test_console_script_human_output(checkpoint_file, sample_videos):
    result = subprocess.run(
        [sys.executable, "-m", "i3d_infer.cli", "predict", str(sample_videos["carphone_pristine"]),
         "--checkpoint", str(checkpoint_file), "--topk", "3", "--protocol", "centercrop"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("carphone_pristine.mp4  (120 frames, protocol centercrop)")
    assert len(lines) == 4 and all(len(line.split()) == 2 for line in lines[1:])


def test_default_checkpoint_offline_points_to_checkpoint_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I3D_INFER_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    assert main(["predict", "video.mp4"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "cannot download https://download.openmmlab.com/" in err and "7c30d5bb.pth" in err
    assert f"put it at {tmp_path}" in err and "--checkpoint PATH" in err


def test_bad_checkpoint_and_device_are_one_line_errors(tmp_path, checkpoint_file, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    assert main(["predict", "v.mp4", "--checkpoint", str(bad)]) == 2
    assert main(["predict", "v.mp4", "--checkpoint", str(tmp_path / "none.pth")]) == 2
    if not torch.cuda.is_available():
        assert main(["predict", "v.mp4", "--checkpoint", str(checkpoint_file), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("i3d: error: ") and "bad.pth: not a readable PyTorch checkpoint" in err[0]
    assert err[1] == f"i3d: error: {tmp_path / 'none.pth'}: checkpoint not found"
    if not torch.cuda.is_available():
        assert "CUDA is not available" in err[2]


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="checkpoint not found"):
        main(["--debug", "predict", "v.mp4", "--checkpoint", str(tmp_path / "none.pth")])
    with pytest.raises(Exception, match="checkpoint not found"):
        main(["predict", "v.mp4", "--checkpoint", str(tmp_path / "none.pth"), "--debug"])
