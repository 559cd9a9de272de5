"""Every decoder on the real-world corpus (tests/corpus.py), against an independent reference.

The reference is what the seed's frame extraction reads (``cv2.VideoCapture.read`` until its first failure, turned
upright by OpenCV's own auto-orientation; for AV1, which OpenCV's wheel cannot decode, PyAV's plain RGB frames
turned by ``np.rot90``), sampled by the tests' transcriptions of mmaction2 0.x and 1.x ``SampleFrames``, resized and
cropped with cv2/numpy as mmaction2's ``Resize``, ``CenterCrop`` and ``ThreeCrop`` do. Checked:

- the default decoder's views equal the reference on every shape FFmpeg decodes (AV1 through PyAV, recorded), for
  the three protocols and both sampling modes; unreadable files raise one line naming the file;
- PyAV's frames equal OpenCV's on every shape both decode (4:2:2, 4:4:4, 10-bit, full range, rotations included);
- the display matrix turns the frames the way it says (the rotated files are the plain file's pixels, turned);
- the NVDEC logic (FFmpeg's planes for NVDEC's) gives the CPU path's frames, or hands the video over before
  decoding it, with the reason, on every shape.
"""

from __future__ import annotations

from dataclasses import replace

import av
import cv2
import numpy as np
import pytest
import torch

from corpus import CASE, CASES
from i3d_infer.data.decode import OpenCVSource, PyAVSource
from i3d_infer.data.gpu.decode import NvdecReader
from i3d_infer.data.pipeline import read_frames, sampler
from i3d_infer.data.transforms import get_protocol
from i3d_infer.errors import HandOver, VideoError
from mmaction_reference import (
    mmaction2_0x_test_frame_inds,
    mmaction2_test_frame_inds,
    mmaction2_views,
    read_all_frames,
)
from reduced import SMALL_PRE
from videos import assert_reader_equals_the_cpu, ffmpeg_nv12

READABLE = [case.name for case in CASES if case.readable]
UNREADABLE = {  # file -> the one-line error's end
    "cut_mp4": "cannot open as a video (Invalid data found when processing input)",
    "zero_bytes.mp4": "cannot open as a video (Invalid data found when processing input)",
    "text.mp4": "cannot open as a video (Invalid data found when processing input)",
    "audio_only.m4a": "has no video stream",
}
OPENCV_CANNOT = {"av1"}  # OpenCV's wheel has no software AV1 decoder
PROTOCOLS = ["seed", "centercrop", "threecrop"]
CPU = torch.device("cpu")


def reference_frames(path) -> list[np.ndarray]:
    """The upright RGB frames: OpenCV's, read until the first failure; PyAV's where OpenCV decodes none."""
    frames = read_all_frames(path)
    if frames:
        return frames
    with av.open(str(path)) as container:
        return [
            np.rot90(f.to_ndarray(format="rgb24"), round(f.rotation) // 90).copy() for f in container.decode(video=0)
        ]


def reference_views(frames: list[np.ndarray], protocol: str, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """``(frame_inds, uint8 views (crops * clips, 3, T, S, S))`` of mmaction2's test pipeline on ``frames``."""
    pre = SMALL_PRE
    sample = mmaction2_0x_test_frame_inds if mode == "0.x" else mmaction2_test_frame_inds
    inds = sample(len(frames), pre.clip_len, pre.frame_interval, pre.num_clips)
    return inds, mmaction2_views(frames, inds, protocol, pre.size)


@pytest.fixture(scope="module")
def references(corpus):
    return {name: reference_frames(corpus[name]) for name in READABLE}


@pytest.mark.parametrize("name", READABLE)
def test_default_decoder_equals_the_reference(corpus, references, name):
    frames = references[name]
    assert len(frames) > 0
    for mode in ("0.x", "1.x"):
        pre = replace(SMALL_PRE, sampling=mode)
        for protocol in PROTOCOLS:
            read = read_frames(corpus[name], protocol, pre)
            inds, views = reference_views(frames, protocol, mode)
            assert read.num_frames == len(frames)
            np.testing.assert_array_equal(read.frame_indices, inds)
            np.testing.assert_array_equal(read.views().views, views, err_msg=f"{name} {protocol} {mode}")
    expected = "pyav (opencv: no decodable frames)" if name in OPENCV_CANNOT else "opencv"
    assert read.decoder == expected


@pytest.mark.parametrize("name", list(UNREADABLE))
def test_unreadable_files_raise_one_line_naming_the_file(corpus, name):
    for decoder in (OpenCVSource, PyAVSource):
        with pytest.raises(VideoError) as error:
            list(decoder(corpus[name]).frames())
        assert str(error.value) == f"{corpus[name]}: {UNREADABLE[name]}"
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", [name for name in READABLE if name not in OPENCV_CANNOT])
def test_pyav_equals_opencv(corpus, references, name):
    """PyAV's frames, converted as OpenCV converts (swscale BGR24 with SWS_BICUBIC) and turned upright as OpenCV
    turns them, are OpenCV's frames exactly, as many of them."""
    ours = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) for bgr in PyAVSource(corpus[name]).bgr_frames()]
    assert len(ours) == len(references[name])
    for k, (a, b) in enumerate(zip(ours, references[name], strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} frame {k}")


def test_opencv_cannot_decode_av1_and_pyav_can(corpus):
    """If OpenCV's wheel learns AV1, this says so (the hand-over then stops happening: drop the case from
    OPENCV_CANNOT)."""
    source = OpenCVSource(corpus["av1"])
    frames = list(source.frames())
    assert len(frames) == CASE["av1"].frames
    assert source.used == "pyav (opencv: no decodable frames)"
    capture = cv2.VideoCapture(str(corpus["av1"]))
    assert capture.isOpened() and not capture.read()[0]


@pytest.mark.parametrize("turn", ["rotate90", "rotate180", "rotate270"])
def test_display_matrix_turns_the_frames_as_it_says(corpus, references, turn):
    """Read upright, a rotated file's frames are its coded frames turned counter-clockwise by the matrix's angle
    (what a player shows). Its own coded frames, not the plain case's: x264 does not encode the same frames to the
    same bytes in every run (the rotated files came out in one of several encodings, one run in ~5)."""
    capture = cv2.VideoCapture(str(corpus[turn]))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # the coded frames, as stored
    coded = []
    while (read := capture.read())[0]:
        coded.append(cv2.cvtColor(read[1], cv2.COLOR_BGR2RGB))
    assert len(coded) == len(references[turn]) == CASE[turn].frames
    for upright, frame in zip(references[turn], coded, strict=True):
        np.testing.assert_array_equal(upright, np.rot90(frame, CASE[turn].rotation // 90))


def test_opencv_orientation_is_set_not_inherited(corpus):
    capture = OpenCVSource(corpus["rotate90"])._open()
    assert capture.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 1
    assert capture.get(cv2.CAP_PROP_ORIENTATION_META) == 270  # OpenCV's clockwise angle of the 90° CCW matrix


NVDEC_HANDS_OVER = {  # case -> the start of its recorded reason (Hopper's limits: the card is not asked on a CPU)
    "h264_444": "yuv444p frames are converted by swscale's scaler",
    "h264_10bit": "yuv420p10le frames are converted by swscale's scaler",
    "hevc": "96x64 is outside the sizes this GPU's NVDEC decodes (144x144-8192x8192)",
    "hevc_10bit": "yuv420p10le frames",
    "vp9": "96x64 is outside the sizes",
    "vp8": "vp8 is not decoded bit-exactly by every decoder",
    "av1": "this GPU's NVDEC does not decode 8-bit 4:2:0 av1",
    "mpeg4": "mpeg4 is not decoded bit-exactly",
    "mjpeg": "mjpeg is not decoded bit-exactly",
    "mpeg2": "mpeg2video is not decoded bit-exactly",
    "prores": "prores is not decoded bit-exactly",
    "ffv1_odd": "ffv1 is not decoded bit-exactly",
    "cut_ts": "mpeg2video is not decoded bit-exactly",
}


def nvdec_reader(protocol: str, limits=None, nv12=ffmpeg_nv12) -> NvdecReader:
    return NvdecReader(CPU, get_protocol(protocol), SMALL_PRE.size, batches=nv12, fused=False, limits=limits)


@pytest.mark.parametrize("name", READABLE)
def test_nvdec_logic_gives_the_cpu_frames_or_hands_over(corpus, name):
    path = corpus[name]
    for protocol in PROTOCOLS:
        reader = nvdec_reader(protocol, nv12=_no_decoder if name in NVDEC_HANDS_OVER else ffmpeg_nv12)
        if name in NVDEC_HANDS_OVER:
            with pytest.raises(HandOver) as handed:
                reader.read(path, sampler(SMALL_PRE))
            assert str(handed.value).startswith(f"{path}: {NVDEC_HANDS_OVER[name]}")
            continue
        if name == "flipped_bytes":  # FFmpeg's decoder raises at the damage: a reader failure, the CPU reads it
            with pytest.raises(av.error.FFmpegError):
                reader.read(path, sampler(SMALL_PRE))
            continue
        assert_reader_equals_the_cpu(reader, path, protocol, SMALL_PRE)


def _no_decoder(path):
    raise AssertionError(f"a decoder was made for {path}, which should have been handed over")


@pytest.mark.parametrize("name", ["hevc", "vp9", "av1"])
def test_nvdec_logic_on_codecs_the_card_takes(corpus, name):
    """HEVC, VP9 and AV1 planes, where the card's limits take them (asked of the driver on a GPU), convert exactly."""
    for protocol in PROTOCOLS:
        reader = nvdec_reader(protocol, limits=lambda codec: ((16, 16), (8192, 8192)))
        assert_reader_equals_the_cpu(reader, corpus[name], protocol, SMALL_PRE)


def test_nvjpeg_hands_over_greyscale_and_cmyk_jpegs(tmp_path, references):
    """A rawframe directory of greyscale or CMYK JPEGs is handed to the CPU before nvJPEG sees it (its RGB would
    not be libjpeg's); the CPU reads them as cv2.imread does (three channels)."""
    from PIL import Image

    from i3d_infer.data.gpu.decode import NvjpegReader

    frames = references["h264"][:6]
    for kind, save in (
        ("grey", lambda rgb, path: cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))),
        ("cmyk", lambda rgb, path: Image.fromarray(rgb).convert("CMYK").save(path, "JPEG")),
    ):
        directory = tmp_path / kind
        directory.mkdir()
        for k, rgb in enumerate(frames):
            save(rgb, directory / f"img_{k + 1:05d}.jpg")
        reader = NvjpegReader(CPU, get_protocol("seed"), SMALL_PRE.size, decode=_no_decoder)
        with pytest.raises(HandOver, match=f"{directory}: img_00001.jpg is a JPEG with {1 if kind == 'grey' else 4}"):
            reader.read(directory, sampler(SMALL_PRE), len(frames))
        assert read_frames(directory, "seed", SMALL_PRE, num_frames=len(frames)).frames.shape[-1] == 3
