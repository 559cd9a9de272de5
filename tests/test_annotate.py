"""``i3d predict --annotate``: the video back with labels drawn, same frames and size, pixels changed only in boxes."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from i3d_infer import Predictor
from i3d_infer.annotate import annotate, clip_of_frame
from i3d_infer.cli import main
from i3d_infer.data.decode import open_source
from reduced import SMALL
from videos import write_video


@pytest.fixture(scope="module")
def predictor(checkpoint_file):
    return Predictor.create(checkpoint_file, weights=SMALL)


def decoded(path, decoder="opencv") -> list[np.ndarray]:
    return [lazy() for lazy in open_source(path, decoder).frames()]


def pyav_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def opencv_shape(path) -> tuple[int, int, int]:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape
    capture.release()
    return count, shape[1], shape[0]


@pytest.mark.slow
def test_lossless_output_differs_from_the_input_only_in_the_boxes(predictor, sample_videos, tmp_path):
    video = sample_videos["carphone_pristine"]  # 176x144, 120 frames
    result = annotate(predictor, video, tmp_path / "out.mp4", protocol="threecrop", lossless=True, progress=False)
    source = decoded(video)
    written = pyav_frames(result.path)
    assert result.frames == len(source) == len(written) == 120 and result.size == (176, 144)
    assert opencv_shape(result.path) == (120, 176, 144)
    changed = 0
    for frame, out, boxes in zip(source, written, result.boxes, strict=True):
        inside = np.zeros(frame.shape[:2], bool)
        for x0, y0, x1, y1 in boxes:
            inside[y0:y1, x0:x1] = True
        differs = np.any(frame != out, axis=2)
        assert not (differs & ~inside).any()  # outside the label boxes: the decoded pixels, exactly
        changed += differs.sum()
    assert changed > 0
    # the clip boxes follow the clips: a top-left box exactly on the frames some clip samples
    spans = clip_of_frame(result.prediction.frame_indices, 120) >= 0
    assert [len(b) == 2 for b in result.boxes] == spans.tolist()


def test_default_encoding_opens_everywhere_odd_size_and_rawframes(predictor, tmp_path):
    odd = write_video(tmp_path / "odd.mp4", list(range(30)), width=97, height=61)
    result = annotate(predictor, odd, tmp_path / "odd_out.mp4", protocol="seed", progress=False)
    assert result.frames == 30 and result.size == (97, 61)
    assert opencv_shape(result.path) == (30, 97, 61) and len(pyav_frames(result.path)) == 30
    frames_dir = tmp_path / "rawframes"
    frames_dir.mkdir()
    for i, frame in enumerate(decoded(odd)[:20]):
        cv2.imwrite(str(frames_dir / f"img_{i + 1:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = annotate(predictor, frames_dir, tmp_path / "from_frames.mp4", protocol="centercrop", progress=False)
    assert result.frames == 20 and opencv_shape(result.path) == (20, 97, 61)


def test_clip_of_frame_prefers_the_nearest_middle():
    indices = np.array([[0, 2, 4, 6], [4, 6, 8, 10]])
    shown = clip_of_frame(indices, 14)
    assert shown.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, -1, -1, -1]  # frame 5: a tie, the earlier clip


def test_cli_annotate_errors(tmp_path, capsys):
    assert main(["predict", "a.mp4", "b.mp4", "--annotate", str(tmp_path / "o.mp4")]) == 2
    assert "--annotate writes one video; got 2 inputs" in capsys.readouterr().err
