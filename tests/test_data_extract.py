"""Frame extraction: pixel-identical to the bare OpenCV loop, resumable after a worker dies, bad videos reported."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import i3d_infer.prepare.extract as extract_module
from i3d_infer.cli import main
from i3d_infer.errors import I3DError
from i3d_infer.prepare.extract import ExtractOptions, extract_all, extract_video
from videos import opencv_rawframes, write_video, write_video_without_frames


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


@pytest.fixture
def video_dir(tmp_path, sample_videos):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("bikes", "carphone_pristine"):
        shutil.copy(sample_videos[name], videos / f"{name}.mp4")
    write_video(videos / "small.mp4", list(range(40)))
    return videos


def test_identical_to_bare_opencv_loop(sample_videos, tmp_path):
    video = sample_videos["carphone_pristine"]
    assert (
        extract_video(video, tmp_path / "ours", ExtractOptions()) == opencv_rawframes(video, tmp_path / "bare") == 120
    )
    assert tree(tmp_path / "ours") == tree(tmp_path / "bare")


def test_short_side_option(sample_videos, tmp_path):
    extract_video(sample_videos["bikes"], tmp_path / "f", ExtractOptions(size=None, short_side=256, quality=90))
    frame = cv2.imread(str(tmp_path / "f" / "img_00001.jpg"))
    assert frame.shape == (256, 602, 3)


def test_extract_all_and_resume_after_a_worker_dies(video_dir, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    report = extract_all(video_dir, reference, workers=2, progress=False, log=lambda _: None)
    assert (report.extracted, report.frames, report.failed) == (3, 410, [])

    original = extract_module.extract_video

    def dies_mid_video(video, out_dir, options, **kwargs):
        if Path(video).name == "bikes.mp4":
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(Path(out_dir) / "img_00001.jpg"), np.zeros((8, 8, 3), np.uint8))
            os._exit(9)  # the worker is killed half-way through this video
        return original(video, out_dir, options, **kwargs)

    monkeypatch.setattr(extract_module, "extract_video", dies_mid_video)  # workers are forked: they see it
    out = tmp_path / "out"
    report = extract_all(video_dir, out, workers=2, progress=False, log=lambda _: None)
    assert report.extracted == 2 and [f["video"] for f in report.failed] == [str(video_dir / "bikes.mp4")]
    assert "worker died" in report.failed[0]["reason"]
    assert not (out / "bikes").exists()  # nothing that looks finished
    monkeypatch.setattr(extract_module, "extract_video", original)
    report = extract_all(video_dir, out, workers=2, progress=False, log=lambda _: None)
    assert (report.extracted, report.skipped, report.failed) == (1, 2, [])
    assert tree(out) == tree(reference)
    assert not list(out.glob(".tmp-*"))


@pytest.mark.slow
def test_hanging_video_times_out(video_dir, tmp_path, monkeypatch):
    original = extract_module.extract_video

    def hangs(video, out_dir, options, **kwargs):
        if Path(video).name == "small.mp4":
            time.sleep(60)
        return original(video, out_dir, options, **kwargs)

    monkeypatch.setattr(extract_module, "extract_video", hangs)
    out = tmp_path / "out"
    report = extract_all(video_dir, out, ExtractOptions(timeout=2), workers=2, progress=False, log=lambda _: None)
    assert report.extracted == 2
    assert report.failed == [{"video": str(video_dir / "small.mp4"), "reason": "timed out after 2 s"}]
    assert sorted(p.name for p in out.iterdir()) == ["bikes", "carphone_pristine", "extract_report.json"]


def test_bad_videos_are_reported_and_the_run_goes_on(video_dir, tmp_path, capsys):
    (video_dir / "corrupt.mp4").write_bytes(b"\x00" * 1000)
    write_video_without_frames(video_dir / "empty.mkv")
    out = tmp_path / "out"
    code = main(["extract", str(video_dir), str(out), "--ext", "mp4,mkv", "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 1
    report = json.loads((out / "extract_report.json").read_text())
    assert report["extracted"] == 3 and [(Path(f["video"]).name, f["reason"]) for f in report["failed"]] == [
        ("corrupt.mp4", "cannot open as a video (Invalid data found when processing input)"),
        ("empty.mkv", "no decodable frames"),
    ]
    assert f"i3d: {video_dir / 'corrupt.mp4'}: cannot open as a video" in captured.err
    assert "5 videos: 3 extracted" in captured.out
    assert "~" in captured.err and "free in" in captured.err  # the disk estimate line


def test_refuses_when_the_disk_is_too_small(video_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(I3DError, match="not enough disk space .* pass --ignore-disk-check"):
        extract_all(video_dir, tmp_path / "out", progress=False, log=lambda _: None)
    report = extract_all(video_dir, tmp_path / "out", check_disk=False, progress=False, log=lambda _: None)
    assert report.extracted == 3
