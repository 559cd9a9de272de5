"""OpenCV's resize in torch integer ops, bit for bit against cv2 on random images of many sizes (CPU tensors)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from i3d_infer.data.tensor_ops import resize_linear

RNG = np.random.default_rng(7)
SIZES = [
    (272, 640, 256, 256),  # bikes.mp4, seed: squashed
    (272, 640, 256, 602),  # bikes.mp4, short side 256
    (144, 176, 256, 256),  # carphone: enlarged
    (720, 1280, 256, 455),  # bigbuckbunny, short side 256
    (512, 512, 256, 256),  # an exact 2x reduction: INTER_AREA in OpenCV
    (61, 97, 64, 64),
    (1, 5, 3, 2),
    *[tuple(int(v) for v in RNG.integers(2, 300, 4)) for _ in range(30)],
]


@pytest.mark.parametrize(("h", "w", "height", "width"), SIZES)
def test_resize_linear_equals_cv2(h, w, height, width):
    images = RNG.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    expected = np.stack([cv2.resize(i, (width, height), interpolation=cv2.INTER_LINEAR) for i in images])
    np.testing.assert_array_equal(resize_linear(torch.from_numpy(images), width, height).numpy(), expected)


def test_resize_linear_on_real_frames(sample_videos):
    capture = cv2.VideoCapture(str(sample_videos["bikes"]))
    frames = np.stack([cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(4)])
    capture.release()
    expected = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_LINEAR) for f in frames])
    np.testing.assert_array_equal(resize_linear(torch.from_numpy(frames), 256, 256).numpy(), expected)
