"""OpenCV's colour conversion and resize in torch integer ops, bit for bit against cv2 (CPU tensors)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import torch

from i3d_infer.data.gpu.tensor_ops import colour_tables, nv12_to_rgb, resize_linear, yuv420_to_rgb
from videos import write_video
from videos import yuv420_planes as planes

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


def opencv_frames(path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(count)]
    capture.release()
    return frames


def decoded_planes(path, count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    with av.open(str(path)) as container:
        return [planes(f) for f, _ in zip(container.decode(video=0), range(count), strict=False)]


@pytest.mark.parametrize("name", ["bigbuckbunny", "bikes", "carphone_pristine"])
def test_yuv420_and_nv12_to_rgb_equal_cv2_videocapture(sample_videos, name):
    decoded = decoded_planes(sample_videos[name], 12)
    y, u, v = (torch.from_numpy(np.stack(p)) for p in zip(*decoded, strict=True))
    expected = np.stack(opencv_frames(sample_videos[name], 12))
    np.testing.assert_array_equal(yuv420_to_rgb(y, u, v).numpy(), expected)
    nv12 = torch.cat([y, torch.stack([u, v], dim=-1).flatten(2)], dim=1)  # (N, 3H/2, W), UV interleaved
    np.testing.assert_array_equal(nv12_to_rgb(nv12).numpy(), expected)


@pytest.mark.parametrize(("width", "height"), [(98, 62), (130, 70), (250, 142)])
def test_yuv420_to_rgb_on_even_sizes_not_multiples_of_16(tmp_path, width, height):
    path = write_video(tmp_path / "v.mp4", list(range(6)), width=width, height=height)
    y, u, v = (torch.from_numpy(np.stack(p)) for p in zip(*decoded_planes(path, 6), strict=True))
    np.testing.assert_array_equal(yuv420_to_rgb(y, u, v).numpy(), np.stack(opencv_frames(path, 6)))


def test_colour_tables_hold_swscale_terms_for_every_sample():
    """The tables against the module docstring's formulas (swscale's x86 converter), every Y and every (U, V)."""
    luma, chroma = colour_tables(torch.device("cpu"))
    y = np.arange(256, dtype=np.int64)
    np.testing.assert_array_equal(luma.numpy(), ((y * 8 - 128) * 9539) >> 16)
    u, v = (c.ravel() * 8 - 1024 for c in np.meshgrid(y, y, indexing="ij"))  # entry U * 256 + V
    terms = np.stack([(v * 13075) >> 16, ((u * -3209) >> 16) + ((v * -6660) >> 16), (u * 16525) >> 16], axis=-1)
    np.testing.assert_array_equal(chroma.numpy(), terms)
    assert chroma.dtype == luma.dtype == torch.int16


def test_yuv420_to_rgb_on_odd_sizes_crops_the_even_result():
    """Odd sizes (PyAV hands out no planes of them, so cv2 cannot be the reference here): the last chroma row and
    column cover one luma row / column, so the frame equals the even-sized frame's top-left corner."""
    y = torch.from_numpy(RNG.integers(0, 256, (2, 10, 14), dtype=np.uint8))
    u, v = (torch.from_numpy(RNG.integers(0, 256, (2, 5, 7), dtype=np.uint8)) for _ in range(2))
    even = yuv420_to_rgb(y, u, v)
    for h, w in [(9, 13), (10, 13), (9, 14)]:
        np.testing.assert_array_equal(yuv420_to_rgb(y[:, :h, :w], u, v).numpy(), even[:, :h, :w].numpy())


def test_planes_to_model_frames_equal_the_cpu_pipeline(sample_videos):
    """yuv420p planes -> RGB -> resize, all in torch, == the frames the CPU pipeline sends (OpenCV decode + resize)."""
    from i3d_infer.data.pipeline import read_frames

    video = read_frames(sample_videos["bikes"], "seed")
    wanted = np.unique(video.frame_indices)[:24]
    with av.open(str(sample_videos["bikes"])) as container:
        chosen = [planes(f) for i, f in enumerate(container.decode(video=0)) if i in set(wanted.tolist())]
    y, u, v = (torch.from_numpy(np.stack(p)) for p in zip(*chosen, strict=True))
    frames = resize_linear(yuv420_to_rgb(y, u, v), 256, 256)
    np.testing.assert_array_equal(frames.numpy(), video.frames[: len(wanted)])
