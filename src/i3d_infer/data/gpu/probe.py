"""What a video is, asked once before it reaches NVDEC: the reference's pixels on the GPU, or a hand-over to the CPU.

The GPU path reproduces OpenCV exactly for 8-bit 4:2:0 video, limited or full range, upright or turned by a
multiple of 90 degrees (``tensor_ops``; ``torch.rot90`` before the resize, as OpenCV turns before it), from the
planes of a codec whose decoding the standard makes exact (H.264, HEVC, VP9, AV1: every conforming decoder gives the
same planes). Anything else is handed to a CPU worker
before a decoder is made for it, the reason recorded: another bit depth or chroma layout (swscale converts those
through its scaler, not reproduced here), a codec whose standard allows decoders to differ (MPEG-2 and MPEG-4
Part 2: the IDCT is only specified to a tolerance), or one the card's NVDEC cannot decode at that size.

The probe is PyAV's view of the container (codec, profile, pixel format: the range as swscale reads it, from a
``yuvj*`` format) plus the first decoded frame's display matrix (PyAV exposes the rotation on frames only). The
CPU path never probes: OpenCV and PyAV read all of it while decoding.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass

from ...errors import VideoError
from ..decode import PyAVSource

# codecs whose decoded planes are fixed by their standard -> cudaVideoCodec (nvcuvid.h)
NVDEC_CODECS = {"h264": 4, "hevc": 8, "vp9": 10, "av1": 11}
GPU_PIXEL_FORMATS = {"yuv420p": False, "yuvj420p": True}  # -> full range (how swscale reads them)
# when the card cannot be asked: what NVDEC does on Hopper (H100/H200) for 8-bit 4:2:0, (min, max) coded sizes from
# NVIDIA's NVDEC programming guide; AV1 left to the CPU (measured: no AV1 decoding on the lent H200)
HOPPER_LIMITS = {
    "h264": ((48, 16), (4096, 4096)),
    "hevc": ((144, 144), (8192, 8192)),
    "vp9": ((128, 128), (8192, 8192)),
}


@dataclass(frozen=True)
class VideoProbe:
    """The facts about a video file that decide whether NVDEC can give the reference's pixels."""

    codec: str  # FFmpeg's name: h264, hevc, vp9, av1, mpeg4, ...
    profile: str | None
    pix_fmt: str  # what FFmpeg's decoder outputs: yuv420p, yuvj420p, yuv420p10le, ...
    width: int
    height: int
    rotation: int = 0  # counter-clockwise degrees of the display matrix, as PyAV reports it (-180..180)

    @property
    def full_range(self) -> bool:
        return GPU_PIXEL_FORMATS.get(self.pix_fmt, False)


def probe_video(path: str | os.PathLike) -> VideoProbe:
    """PyAV's container facts about ``path`` and its first frame's rotation (decoding that frame only).

    Raises:
        VideoError: the file cannot be opened, or has no video stream or no decodable frame.
    """
    import av

    with PyAVSource(path).open_container() as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError:
            first = None
        if first is None:
            raise VideoError(f"{path}: no decodable frames")
        codec = context.codec.canonical_name  # the format, not the decoder (libdav1d decodes av1)
        return VideoProbe(codec, stream.profile, first.format.name, first.width, first.height, first.rotation)


def nvdec_refusal(probe: VideoProbe, limits=None) -> str | None:
    """Why NVDEC must not decode this video (None: it gives the reference's pixels). ``limits(codec) -> ((min_w,
    min_h), (max_w, max_h)) | None``: what the card decodes in 8-bit 4:2:0 (default: asked of the driver, else
    :data:`HOPPER_LIMITS`)."""
    if probe.codec not in NVDEC_CODECS:
        return f"{probe.codec} is not decoded bit-exactly by every decoder: the CPU's FFmpeg decodes it"
    if probe.pix_fmt not in GPU_PIXEL_FORMATS:
        return f"{probe.pix_fmt} frames are converted by swscale's scaler, which the GPU path does not reproduce"
    sizes = (limits or card_limits)(probe.codec)
    if sizes is None:
        return f"this GPU's NVDEC does not decode 8-bit 4:2:0 {probe.codec}"
    (min_w, min_h), (max_w, max_h) = sizes
    if not (min_w <= probe.width <= max_w and min_h <= probe.height <= max_h):
        limits = f"{min_w}x{min_h}-{max_w}x{max_h}"
        return f"{probe.width}x{probe.height} is outside the sizes this GPU's NVDEC decodes ({limits})"
    return None


@functools.cache
def card_limits(codec: str):
    """What the current GPU's NVDEC decodes of ``codec`` in 8-bit 4:2:0 (``cuvidGetDecoderCaps`` of the driver's
    libnvcuvid, on the current CUDA context), or :data:`HOPPER_LIMITS` when the driver cannot be asked."""
    asked = _ask_driver(NVDEC_CODECS[codec])
    return HOPPER_LIMITS.get(codec) if asked is False else asked


class _DecodeCaps(ctypes.Structure):  # CUVIDDECODECAPS (cuviddec.h)
    _fields_ = [
        ("eCodecType", ctypes.c_int),
        ("eChromaFormat", ctypes.c_int),
        ("nBitDepthMinus8", ctypes.c_uint),
        ("reserved1", ctypes.c_uint * 3),
        ("bIsSupported", ctypes.c_ubyte),
        ("nNumNVDECs", ctypes.c_ubyte),
        ("nOutputFormatMask", ctypes.c_ushort),
        ("nMaxWidth", ctypes.c_uint),
        ("nMaxHeight", ctypes.c_uint),
        ("nMaxMBCount", ctypes.c_uint),
        ("nMinWidth", ctypes.c_ushort),
        ("nMinHeight", ctypes.c_ushort),
        ("reserved3", ctypes.c_uint * 12),  # the histogram fields of newer SDKs, then reserved: room to spare
    ]


def _ask_driver(codec_id: int):
    """``((min_w, min_h), (max_w, max_h))``, None (not supported), or False (the driver could not be asked)."""
    try:
        import torch

        torch.empty(
            1, device="cuda"
        )  # a runtime call: the primary context current on this thread (the query needs one)
        caps = _DecodeCaps(eCodecType=codec_id, eChromaFormat=1, nBitDepthMinus8=0)  # cudaVideoChromaFormat_420
        if ctypes.CDLL("libnvcuvid.so.1").cuvidGetDecoderCaps(ctypes.byref(caps)) != 0:
            return False
    except (OSError, AttributeError, RuntimeError, AssertionError):
        return False
    if not caps.bIsSupported:
        return None
    return (caps.nMinWidth, caps.nMinHeight), (caps.nMaxWidth, caps.nMaxHeight)


SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def jpeg_refusal(data: bytes) -> str | None:
    """Why nvJPEG's RGB output would not be libjpeg's for this JPEG file's bytes (None: it may decode it): a
    greyscale or CMYK/YCCK image (not three components) or a precision other than 8 bits, read from its frame
    header. A file with no readable header is left to the decoder, whose refusal hands it over too."""
    i = 2 if data[:2] == b"\xff\xd8" else len(data)
    while i + 9 < len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill byte, RSTn, TEM: no length
            i += 1 if marker == 0xFF else 2
            continue
        if marker in SOF_MARKERS:
            precision, components = data[i + 4], data[i + 9]
            if components != 3:
                return f"a JPEG with {components} component{'s' if components > 1 else ''} (nvJPEG makes no such RGB)"
            return None if precision == 8 else f"a {precision}-bit JPEG"
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None
