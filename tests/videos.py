"""Small synthetic videos for decoder tests, written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch


def frame_image(i: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A distinct, smooth uint8 RGB image for frame ``i``."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 3 + i * 7) % 256, (y * 4 + i * 11) % 256, np.full_like(x, (i * 13) % 256)], -1).astype(
        np.uint8
    )


def write_video(
    path: Path, pts: list[int], codec: str = "mpeg4", rate: int = 25, width: int = 64, height: int = 48
) -> Path:
    """Encode one frame per entry of ``pts`` (in 1/rate units); gaps in ``pts`` make headers estimate wrongly."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, rate)
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(frame_image(i, height, width), format="rgb24")
            frame.pts = t
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_video_without_frames(path: Path) -> Path:
    """A Matroska file with a video stream that has no frames (and an audio stream, so the file is written)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for i in range(10):
            frame.pts = i * 800
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def opencv_rawframes(video: Path, out: Path, size: tuple[int, int] | None = (256, 256), quality: int = 95) -> int:
    """The reference extraction: cv2.VideoCapture.read + cv2.resize(INTER_LINEAR) + cv2.imwrite, 1-based names."""
    out.mkdir(parents=True)
    capture = cv2.VideoCapture(str(video))
    i = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return i
        i += 1
        if size:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(out / f"img_{i:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, quality])


def yuv420_planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFmpeg's 4:2:0 planes of an ``av.VideoFrame`` as its decoder made them (a yuvj420p frame's full-range samples
    left as they are): what NVDEC outputs, by the standard; PyAV refuses odd sizes."""
    h, w = frame.height, frame.width
    native = frame.format.name if frame.format.name in ("yuv420p", "yuvj420p") else "yuv420p"
    data = frame.to_ndarray(format=native)
    chroma = data[h:].reshape(2, h // 2, w // 2)
    return data[:h], chroma[0], chroma[1]


def ffmpeg_nv12(path: str, batch: int = 7):
    """``(count hint, batches of NV12 frames)`` from FFmpeg's decoder: PyNvVideoCodec's contract, on the CPU."""
    container = av.open(path)
    hint = container.streams.video[0].frames

    def batches():
        try:
            frames = []
            for frame in container.decode(video=0):
                y, u, v = yuv420_planes(frame)
                chroma = np.stack([u, v], axis=-1).reshape(u.shape[0], -1)  # U0 V0 U1 V1 ...
                frames.append(torch.from_numpy(np.concatenate([y, chroma])))
                if len(frames) == batch:
                    yield frames
                    frames = []
            if frames:
                yield frames
        finally:
            container.close()

    return hint, batches()


def opencv_jpeg(calls: list[int]):
    """nvJPEG's contract with OpenCV's decoder (its pixels are what benchmarks/e2e_gpu.py measures); records the
    number of files of every call."""

    def decode(data):
        calls.append(len(data))
        images = [cv2.imdecode(d.numpy(), cv2.IMREAD_COLOR) for d in data]
        if any(i is None for i in images):
            raise RuntimeError("Error while decoding JPEG images: nvjpegDecode failed")
        return [torch.from_numpy(cv2.cvtColor(i, cv2.COLOR_BGR2RGB)).permute(2, 0, 1) for i in images]

    return decode


def assert_reader_equals_the_cpu(reader, path, protocol: str, preprocessing) -> None:
    """A GPU frame reader (on its stand-ins) gives the CPU pipeline's read of ``path`` bit for bit: frame count,
    indices, index table and frames."""
    from i3d_infer.data.pipeline import read_frames, sampler

    count, indices, frames, table = reader.read(path, sampler(preprocessing))
    expected = read_frames(path, protocol, preprocessing)
    assert count == expected.num_frames
    np.testing.assert_array_equal(indices, expected.frame_indices)
    np.testing.assert_array_equal(table, expected.table)
    np.testing.assert_array_equal(frames.numpy(), expected.frames, err_msg=f"{path} {protocol}")
