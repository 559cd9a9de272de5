"""The dataset reader: list files of both formats, the same views as the core pipeline, per-video errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from i3d_infer.data.datasets import VideoDataset, read_list
from i3d_infer.data.extract import ExtractOptions, extract_video
from i3d_infer.data.pipeline import read_video
from i3d_infer.errors import I3DError


@pytest.fixture
def data(tmp_path, sample_videos):
    videos = tmp_path / "videos"
    frames = tmp_path / "rawframes"
    videos.mkdir()
    for name in ("carphone_pristine", "bikes"):
        shutil.copy(sample_videos[name], videos / f"{name}.mp4")
        extract_video(sample_videos[name], frames / name, ExtractOptions())
    (tmp_path / "videos.txt").write_text("carphone_pristine.mp4 0\nbikes.mp4 1\nmissing.mp4 2\n")
    (tmp_path / "rawframes.txt").write_text("carphone_pristine 120 0\nbikes 250 1\n")
    return tmp_path


def test_both_formats_give_the_core_pipeline_views(data):
    for list_name, root, fmt in (("videos.txt", "videos", "videos"), ("rawframes.txt", "rawframes", "rawframes")):
        dataset = VideoDataset(data / list_name, data / root, protocol="centercrop")
        assert dataset.list_format == fmt
        sample = dataset[1]
        assert (sample.video_id, sample.label, sample.error) == ({"videos": "bikes.mp4"}.get(fmt, "bikes"), 1, None)
        expected = read_video(data / root / sample.video_id, "centercrop")
        assert np.array_equal(sample.views.views, expected.views)
        assert sample.views.num_frames == 250


def test_bad_video_is_a_sample_error_not_a_crash(data):
    samples = list(VideoDataset(data / "videos.txt", data / "videos"))
    assert [s.error is None for s in samples] == [True, True, False]
    assert samples[2].error == f"{data / 'videos' / 'missing.mp4'}: no such file" and samples[2].views is None
    np.testing.assert_array_equal(VideoDataset(data / "videos.txt", data / "videos").labels, [0, 1, 2])


def test_rawframes_use_the_listed_frame_count(data):
    (data / "short.txt").write_text("bikes 100 1\n")
    sample = VideoDataset(data / "short.txt", data / "rawframes")[0]
    assert sample.views.num_frames == 100 and sample.views.frame_indices.max() < 100
    (data / "long.txt").write_text("bikes 400 1\n")  # more than on disk: the missing file is named
    sample = VideoDataset(data / "long.txt", data / "rawframes")[0]
    assert sample.views is None and "img_00" in sample.error and "cannot read frame" in sample.error


@pytest.mark.parametrize(
    ("text", "message"),
    [("a 1 2 3\n", "expected <video> <label>"), ("dir x 1\n", "expected <frame_dir> <total_frames> <label>"),
     ("v.mp4 1\nv2.mp4\n", ":2: malformed videos list line 'v2.mp4'"), ("\n", "empty list file")],
)  # fmt: skip
def test_malformed_list_lines(tmp_path, text, message):
    path = tmp_path / "list.txt"
    path.write_text(text)
    with pytest.raises(I3DError, match=message.replace("(", r"\(")):
        read_list(path)
