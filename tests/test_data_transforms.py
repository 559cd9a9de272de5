"""Resize, crops and the three view protocols (spec §2.5-2.6), on synthetic frames and a real video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from i3d_infer.data.pipeline import read_video
from i3d_infer.data.transforms import PROTOCOLS, crop_offsets, get_protocol, make_views, resize_frame, short_side_size


@pytest.mark.parametrize(
    ("h", "w", "expected"),
    [(272, 640, (602, 256)), (720, 1280, (455, 256)), (144, 176, (313, 256)), (256, 340, (340, 256)),
     (1080, 1920, (455, 256)), (480, 270, (256, 455)), (301, 301, (256, 256))],
)  # fmt: skip
def test_short_side_rounding(h, w, expected):
    scale = 256 / min(h, w)
    assert short_side_size(h, w, 256) == expected == (int(w * scale + 0.5), int(h * scale + 0.5))


def test_resize_frame_protocols():
    frame = np.random.default_rng(0).integers(0, 256, (272, 640, 3), dtype=np.uint8)
    squashed = resize_frame(frame, PROTOCOLS["seed"], 256)
    assert np.array_equal(squashed, cv2.resize(frame, (256, 256), interpolation=cv2.INTER_LINEAR))
    short = resize_frame(frame, PROTOCOLS["threecrop"], 256)
    assert np.array_equal(short, cv2.resize(frame, (602, 256), interpolation=cv2.INTER_LINEAR))
    same = np.zeros((256, 256, 3), np.uint8)
    assert resize_frame(same, PROTOCOLS["seed"], 256) is same  # no-op on the seed's 256x256 rawframes


def test_crop_offsets_follow_mmaction2():
    assert crop_offsets(256, 602, "three", size=256) == [(0, 0), (346, 0), (173, 0)]  # left, right, middle
    assert crop_offsets(455, 256, "three", size=256) == [(0, 0), (0, 198), (0, 99)]  # top, bottom, middle
    assert crop_offsets(256, 341, "center", size=256) == [(42, 0)]
    assert crop_offsets(256, 256, "full", size=256) == [(0, 0)]
    with pytest.raises(ValueError):
        crop_offsets(300, 300, "three", size=256)


def test_views_are_crop_major():
    clips = np.zeros((10, 4, 256, 300, 3), np.uint8)
    for c in range(10):
        clips[c, :, :, :, 0] = c
    clips[:, :, :, :22, 1] = 1  # marks the left crop's own columns
    views = make_views(clips, PROTOCOLS["threecrop"], 256)
    assert views.shape == (30, 3, 4, 256, 256) and views.flags.c_contiguous
    assert [int(views[v, 0, 0, 0, 0]) for v in range(30)] == list(range(10)) * 3  # view = crop * 10 + clip
    assert views[:10, 1, :, :, :22].all() and not views[10:, 1].any()


def test_unknown_protocol():
    with pytest.raises(ValueError, match="choose one of seed, centercrop, threecrop, fivecrop, tencrop"):
        get_protocol("sevencrop")


@pytest.mark.parametrize(("protocol", "num_views"), [("seed", 10), ("centercrop", 10), ("threecrop", 30)])
def test_protocols_on_a_real_video(sample_videos, protocol, num_views):
    path = sample_videos["bikes"]  # 640x272, 250 frames
    views = read_video(path, protocol)
    assert views.views.shape == (num_views, 3, 32, 256, 256) and views.views.dtype == np.uint8
    assert views.num_frames == 250 and views.frame_indices.shape == (10, 32)
    # Rebuild view 0's first frame by hand: frame index -> cv2 decode -> RGB -> resize -> crop.
    capture = cv2.VideoCapture(str(path))
    for _ in range(views.frame_indices[0, 0] + 1):
        _, bgr = capture.read()
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    size = (256, 256) if protocol == "seed" else (602, 256)
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    left = 0 if protocol != "centercrop" else 173
    assert np.array_equal(views.views[0, :, 0].transpose(1, 2, 0), resized[:, left : left + 256])
