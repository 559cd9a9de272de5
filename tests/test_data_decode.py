"""Decoding: real sample videos, both decoders, rawframe directories, lying headers and every bad-input path."""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np
import pytest

from i3d_infer.data.decode import OpenCVSource, PyAVSource, RawframeSource, open_source, read_sampled_frames
from i3d_infer.data.pipeline import read_video
from i3d_infer.data.sampling import sample_frame_indices
from i3d_infer.data.transforms import get_protocol, resize_frame
from i3d_infer.errors import VideoError
from videos import opencv_rawframes, write_video, write_video_without_frames

FRAME_COUNTS = {"bigbuckbunny": 132, "bikes": 250, "carphone_pristine": 120}
SOURCES = [PyAVSource, OpenCVSource]


@pytest.mark.parametrize("source", SOURCES)
def test_sample_video_frame_counts(sample_videos, source):
    for name, path in sample_videos.items():
        assert sum(1 for _ in source(path).frames()) == FRAME_COUNTS[name]


def test_decoders_agree_on_pixels(sample_videos):
    """PyAV and OpenCV decode the sample videos to identical RGB frames (checked on every 7th frame)."""
    for path in sample_videos.values():
        for i, (a, b) in enumerate(zip(PyAVSource(path).frames(), OpenCVSource(path).frames(), strict=True)):
            if i % 7 == 0:
                assert np.array_equal(a(), b()), (path.name, i)


@pytest.mark.parametrize("source", SOURCES)
def test_decoding_threads_change_no_pixel(sample_videos, source):
    """A decode worker's one thread (``worker_threads``) decodes the same frames as FFmpeg's thread per core."""
    for path in sample_videos.values():
        for i, (a, b) in enumerate(zip(source(path, threads=1).frames(), source(path).frames(), strict=True)):
            if i % 5 == 0:
                assert np.array_equal(a(), b()), (path.name, i)
    capture = OpenCVSource(sample_videos["bikes"], threads=1)._open()
    assert capture.get(cv2.CAP_PROP_N_THREADS) == 1
    capture.release()


def swapped_first(source, index: int) -> np.ndarray:
    """Frame ``index`` of ``source`` swapped to RGB at full size, as the pipeline did before resizing."""
    if isinstance(source, RawframeSource):
        return source.read_frame(index)
    capture = cv2.VideoCapture(str(source.path))
    for _ in range(index + 1):
        bgr = capture.read()[1]
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["seed", "threecrop"])
def test_resize_before_the_channel_swap_changes_no_pixel(sample_videos, tmp_path, protocol):
    """OpenCV's frames are resized in BGR, then swapped to RGB straight into their rows: the same pixels as swapping
    every frame first (cv2.resize treats the channels alike), for downscaled, upscaled and rawframe sources (every
    9th sampled frame)."""
    resize = partial(resize_frame, protocol=get_protocol(protocol), size=256)
    opencv_rawframes(sample_videos["bikes"], tmp_path / "bikes", size=(96, 80))
    sources = [OpenCVSource(path) for path in sample_videos.values()] + [RawframeSource(tmp_path / "bikes")]
    for source in sources:
        _, indices, frames, _ = read_sampled_frames(source, sample_frame_indices, resize)
        for row, index in list(enumerate(np.unique(indices)))[::9]:
            np.testing.assert_array_equal(frames[row], resize(swapped_first(source, int(index))), str(source.path))


def test_a_source_that_ignores_out_still_fills_the_rows(sample_videos):
    class Plain(OpenCVSource):  # an older LazyFrame: no ``out``
        def frames(self):
            for lazy in super().frames():
                yield lambda transform=None, out=None, lazy=lazy: lazy(transform).copy()

    resize = partial(resize_frame, protocol=get_protocol("seed"), size=64)
    expected = read_sampled_frames(OpenCVSource(sample_videos["carphone_pristine"]), sample_frame_indices, resize)
    got = read_sampled_frames(Plain(sample_videos["carphone_pristine"]), sample_frame_indices, resize)
    np.testing.assert_array_equal(got[2], expected[2])


@pytest.mark.parametrize("source", SOURCES)
def test_only_sampled_frames_are_converted(sample_videos, source):
    """One pass; the conversion runs once per distinct sampled frame, never for the others; each kept once."""
    path = sample_videos["bikes"]  # 250 frames, 10 clips x 32 at stride 2 from offsets 9..177
    calls = []
    sample = lambda n: sample_frame_indices(n)  # noqa: E731
    transform = lambda frame: calls.append(1) or frame[:8, :8]  # noqa: E731
    count, indices, frames, table = read_sampled_frames(source(path), sample, transform)
    assert count == 250 and table.shape == (10, 32) and frames.shape == (len(np.unique(indices)), 8, 8, 3)
    assert len(calls) == len(np.unique(indices)) < 250
    np.testing.assert_array_equal(np.unique(indices)[table], indices)  # frames[table] are the clips


def test_header_that_lies_is_not_trusted(tmp_path):
    """Frame pts jump from 29 to 200: the header suggests ~201 frames, 31 are decodable; sampling uses 31."""
    path = write_video(tmp_path / "vfr.mkv", [*range(30), 200])
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) > 150  # the claim
    capture.release()
    for decoder in ("opencv", "pyav"):
        views = read_video(path, "seed", decoder=decoder)
        assert views.num_frames == 31
        assert np.array_equal(views.frame_indices, sample_frame_indices(31))


def test_header_that_underestimates(tmp_path, monkeypatch):
    path = write_video(tmp_path / "short_header.mp4", list(range(70)))
    monkeypatch.setattr(OpenCVSource, "frame_count_hint", lambda self: 20)
    views = read_video(path, "seed", decoder="opencv")
    assert views.num_frames == 70 and np.array_equal(views.frame_indices, sample_frame_indices(70))


@pytest.mark.parametrize("decoder", ["opencv", "pyav"])
def test_bad_videos(tmp_path, decoder):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video\n")
    full = write_video(tmp_path / "full.mp4", list(range(50)))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    no_frames = write_video_without_frames(tmp_path / "no_frames.mkv")
    cases = {
        tmp_path / "missing.mp4": "no such file",
        not_video: "cannot open as a video",
        truncated: "cannot open as a video",
        empty: "cannot open as a video",
        no_frames: "no decodable frames",
    }
    for path, reason in cases.items():
        with pytest.raises(VideoError) as info:
            read_video(path, decoder=decoder)
        assert str(info.value).startswith(f"{path}: {reason}"), str(info.value)


def test_rawframes_read_like_mmaction2(sample_videos, tmp_path):
    directory = tmp_path / "carphone"
    assert opencv_rawframes(sample_videos["carphone_pristine"], directory) == 120
    views = read_video(directory, "seed")
    assert views.num_frames == 120 and views.views.shape == (10, 3, 32, 256, 256)
    # View 0, frame 0 is img_{offset+1}: cv2.imdecode + BGR->RGB, unchanged (already 256x256).
    first = views.frame_indices[0, 0]
    expected = cv2.cvtColor(cv2.imread(str(directory / f"img_{first + 1:05d}.jpg")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(views.views[0, :, 0].transpose(1, 2, 0), expected)
    assert isinstance(open_source(directory), RawframeSource)


def test_rawframes_match_video_up_to_jpeg(sample_videos, tmp_path):
    directory = tmp_path / "bikes"
    opencv_rawframes(sample_videos["bikes"], directory)
    from_frames = read_video(directory, "seed").views.astype(np.int16)
    from_video = read_video(sample_videos["bikes"], "seed").views.astype(np.int16)
    assert from_frames.shape == from_video.shape
    assert np.abs(from_frames - from_video).mean() < 2.0  # JPEG quality 95 is the only difference


def test_rawframe_errors(sample_videos, tmp_path):
    directory = tmp_path / "frames"
    opencv_rawframes(sample_videos["carphone_pristine"], directory, size=None)
    (directory / "img_00117.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    with pytest.raises(VideoError, match=r"img_00117.jpg: not a readable image"):
        read_video(directory, "centercrop")  # N=120: clip 9 starts at 54 and reads frame 116
    (directory / "img_00117.jpg").write_bytes(b"")
    with pytest.raises(VideoError, match=r"img_00117.jpg: not a readable image"):
        read_video(directory, "centercrop")
    (directory / "img_00003.jpg").unlink()  # a hole: 119 files, clip 0 starts at frame 2 = img_00003.jpg
    with pytest.raises(VideoError, match=r"img_00003.jpg: cannot read frame"):
        read_video(directory, "centercrop")
    with pytest.raises(VideoError, match="no such rawframe directory|no such file"):
        read_video(tmp_path / "nowhere", "seed")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(VideoError, match="empty_dir: no decodable frames"):
        read_video(empty, "seed")
