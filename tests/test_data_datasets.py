"""The dataset reader: list files of both formats, the same views as the core pipeline, per-video errors."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from i3d_infer.data.datasets import ListEntry, VideoDataset, read_list
from i3d_infer.data.pipeline import read_video
from i3d_infer.errors import I3DError
from i3d_infer.prepare.extract import ExtractOptions, extract_video


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
    [("a 1 2 3 4\n", ":1: list line 'a 1 2 3 4' is in no known format (videos: <video> <label>; rawframes: "
      "<frame_dir> <total_frames> <label>; rawframes_offset: <frame_dir> <offset> <total_frames> <label>)"),
     ("dir x 1\n", "expected <frame_dir> <total_frames> <label>"),
     ("v.mp4 1\nv2.mp4\n", ":2: malformed videos list line 'v2.mp4'"), ("\n", "empty list file"),
     ("d 2 5 1\nd 5 1\n", ":2: malformed rawframes_offset list line 'd 5 1' (expected <frame_dir> <offset> "
      "<total_frames> <label>)")],
)  # fmt: skip
def test_malformed_list_lines(tmp_path, text, message):
    path = tmp_path / "list.txt"
    path.write_text(text)
    with pytest.raises(I3DError, match=re.escape(message)):
        read_list(path)


def test_mmaction2_test_lists(data):
    """mmaction2's own tests/data/annotations list files: rawframe, video and with-offset (RawframeDataset(
    with_offset=True): ``frame_dir offset total_frames label``, frame k read from img_{offset + k + 1})."""
    (data / "rawframe_test_list.txt").write_text("bikes 5 127\n")
    (data / "video_test_list.txt").write_text("bikes.mp4 127\n")
    (data / "rawframe_test_list_with_offset.txt").write_text("bikes 2 5 127\n")
    assert read_list(data / "rawframe_test_list.txt")[1] == [ListEntry("bikes", 127, 5)]
    assert read_list(data / "video_test_list.txt")[1] == [ListEntry("bikes.mp4", 127, None)]
    fmt, entries = read_list(data / "rawframe_test_list_with_offset.txt")
    assert (fmt, entries) == ("rawframes_offset", [ListEntry("bikes", 127, 5, offset=2)])
    shifted = VideoDataset(data / "rawframe_test_list_with_offset.txt", data / "rawframes", protocol="centercrop")[0]
    assert shifted.error is None and shifted.views.num_frames == 5
    # The same clips as a plain list line over a directory whose files are renumbered from img_00003.jpg onwards.
    renumbered = data / "renumbered" / "bikes"
    renumbered.mkdir(parents=True)
    for k in range(5):
        shutil.copy(data / "rawframes" / "bikes" / f"img_{k + 3:05d}.jpg", renumbered / f"img_{k + 1:05d}.jpg")
    plain = VideoDataset(data / "rawframe_test_list.txt", data / "renumbered", protocol="centercrop")[0]
    assert np.array_equal(shifted.views.views, plain.views.views)
    assert np.array_equal(shifted.views.frame_indices, plain.views.frame_indices)
    unshifted = VideoDataset(data / "rawframe_test_list.txt", data / "rawframes", protocol="centercrop")[0]
    assert not np.array_equal(shifted.views.views, unshifted.views.views)
