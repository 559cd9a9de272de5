"""Decoding on the GPU: NVDEC for video files (PyNvVideoCodec), nvJPEG for rawframe directories (torchvision).

The frames never visit the host: the decoder's output is converted and resized on the GPU with OpenCV's own
integer arithmetic (``tensor_ops``), and only the sampled frames are kept, each once, as the CPU path does.

- ``nvdec``: PyNvVideoCodec's ``SimpleDecoder`` in its native NV12 output, read sequentially in batches (a decoded
  frame is a view of a decoder surface that the next call reuses, so the sampled ones are copied out before it);
  one decoder per thread, reused from video to video (``reconfigure_decoder``: creating one dominates a short
  clip's cost), writing its frames on the thread's CUDA stream (on the default stream, NVIDIA's decoder
  synchronises that stream after every frame, and so waits for whatever else runs there, e.g. the model). H.264
  decoding is exact by the standard, so NVDEC's planes are FFmpeg's, and the NV12 -> RGB conversion and the resize
  are OpenCV's bit for bit: the frames equal the CPU path's (measured on the GPU in ``benchmarks/e2e_gpu.py``).
  PyNvVideoCodec's own RGB output is not OpenCV's (BT.709 for untagged streams, another chroma scale), so it is not
  used.
- ``nvjpeg``: ``torchvision.io.decode_jpeg(device="cuda")`` on the sampled frames' files (read by the calling
  thread), the videos of all threads waiting at the time in one call (a group commit, ``Coalesced``). nvJPEG's
  chroma upsampling is not libjpeg-turbo's: its pixels differ from ``cv2.imread``'s by up to 11 levels, up to 60
  after the resize on the sample videos (benchmarks/RESULTS.md), so it is not bit-identical to the CPU path.

An NVDEC reader is not thread-safe: use one per thread; the nvJPEG reader is one for all threads (``shared``).
Keep reads out of CUDA graph captures (``transport.gpu`` does both).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ...errors import HandOver, I3DError, VideoError, first_line
from ..conversion import quarter_turns
from ..decode import GPU_DECODERS, RawframeSource
from ..passes import in_two_passes
from ..transforms import ViewProtocol, resized_size
from . import fused_nv12
from .probe import VideoProbe, jpeg_refusal, nvdec_refusal, probe_video
from .tensor_ops import nv12_to_rgb, resize_linear

INSTALL_HINT = "pip install 'i3d-infer[gpu]'"
NVDEC_BATCH = 64  # frames asked of the decoder at a time (8 threads on an H200: 1.4x the videos/s of 32)

Nv12Batches = Callable[[str], tuple[int, Iterator[list]]]  # path -> (count hint, batches of DLPack NV12 frames)


def check_gpu_decoder(decoder: str, list_format: str) -> None:
    """A GPU decoder fits the list (nvdec: video files; nvjpeg: rawframes) and its library is installed."""
    if (decoder == "nvjpeg") != list_format.startswith("rawframes"):
        kind = "rawframe directories" if decoder == "nvjpeg" else "video files"
        raise I3DError(f"--decoder {decoder} reads {kind}, but the list is a {list_format} list")
    try:
        if decoder == "nvdec":
            import PyNvVideoCodec  # noqa: F401
        else:
            from torchvision.io import decode_jpeg  # noqa: F401
    except ImportError as e:
        raise I3DError(f"--decoder {decoder} needs {e.name} ({INSTALL_HINT})") from None


class FrameReader:
    """Reads one video's sampled frames into GPU memory, resized: ``(count, indices, frames, table)`` as
    :func:`i3d_infer.data.decode.read_sampled_frames` returns them, ``frames`` a CUDA uint8 ``(F, H, W, 3)``."""

    name = ""
    shared = False  # True: one reader serves every decode thread (else one per thread)

    def __init__(self, device: torch.device, protocol: ViewProtocol, size: int) -> None:
        self.device, self.protocol, self.size = device, protocol, size

    def resize(self, rgb: torch.Tensor) -> torch.Tensor:
        """uint8 ``(K, H, W, 3)`` RGB -> the protocol's size, exactly as ``cv2.resize(INTER_LINEAR)``."""
        new_w, new_h = resized_size(rgb.shape[1], rgb.shape[2], self.protocol, size=self.size)
        return rgb if (new_w, new_h) == (rgb.shape[2], rgb.shape[1]) else resize_linear(rgb, new_w, new_h)

    def read(
        self, path: str | os.PathLike, sample: Callable[[int], np.ndarray], num_frames: int | None, *, offset: int = 0
    ):
        """``num_frames`` and ``offset``: what a rawframe list line states (see ``RawframeSource``)."""
        raise NotImplementedError


class NvdecReader(FrameReader):
    """Video files through NVDEC; ``batches`` replaces PyNvVideoCodec (tests feed FFmpeg's planes through it).

    Each video is probed first (:mod:`i3d_infer.data.gpu.probe`; ``probe`` and ``limits`` replace the file's and the
    card's facts in tests): one NVDEC would not give the reference's pixels of is refused with :class:`HandOver`
    before a decoder is made for it. Each decoder batch's sampled frames are converted and resized by one fused
    Triton kernel (:mod:`i3d_infer.data.gpu.fused_nv12`) where Triton is there (``fused``; default: when it runs on
    this device) and the video is limited-range and upright, else by the torch ops of
    :mod:`i3d_infer.data.gpu.tensor_ops` (full range; a turn before the resize, as OpenCV does): the same integers
    either way."""

    name = "nvdec"

    def __init__(
        self,
        device: torch.device,
        protocol: ViewProtocol,
        size: int,
        *,
        batches: Nv12Batches | None = None,
        batch=NVDEC_BATCH,
        fused: bool | None = None,
        probe: Callable[[str], VideoProbe] = probe_video,
        limits=None,
    ):
        super().__init__(device, protocol, size)
        self.batches = batches or PyNvVideoCodecFrames(device, batch)
        self.fused = fused_nv12.available(device) if fused is None else fused
        self.probe, self.limits = probe, limits

    def read(self, path, sample, num_frames=None, *, offset=0):
        """Decode ``path`` in one sequential pass (a second one if the header's frame count was wrong).

        Raises:
            HandOver: NVDEC would not give the reference's pixels of this video (before any decoding).
        """
        probe = self.probe(str(path))
        reason = nvdec_refusal(probe, self.limits)
        if reason is not None:
            raise HandOver(f"{path}: {reason}")
        guess, batches = self.batches(str(path))
        in_order = isinstance(self.batches, PyNvVideoCodecFrames) and self.batches.in_order()
        stream = consumer_stream(self.device)
        convert = partial(self.convert, full_range=probe.full_range, turns=quarter_turns(probe.rotation))
        passes = 0

        def decode_pass(planned: np.ndarray):
            nonlocal batches, passes
            if passes:
                _, batches = self.batches(str(path))
            passes += 1
            frames, count = None, 0
            for batch in batches:
                rows = np.flatnonzero((planned >= count) & (planned < count + len(batch)))
                if len(rows):
                    sampled = [wrap(batch[int(planned[k]) - count], stream) for k in rows]  # (3H/2, W) views
                    nv12 = torch.stack(sampled)  # copied off the decoder's surfaces
                    copied = None if in_order else _event(nv12)
                    frames = convert(nv12, frames, rows=rows, total=len(planned), path=path)
                    if copied is not None:  # the next batch may reuse the surfaces the copy read
                        copied.synchronize()  # (in order: the decoder writes them on this stream, after the copy)
                count += len(batch)
            return count, frames

        return in_two_passes(path, guess, sample, decode_pass=decode_pass)

    def convert(self, nv12: torch.Tensor, frames, *, rows, total: int, path, full_range=False, turns=0):
        """NV12 ``(K, 3H/2, W)`` -> upright RGB at the protocol's size, written into rows ``rows`` (consecutive:
        the planned frames are sorted) of ``frames`` ``(total, height, width, 3)``, made on the first call."""
        height, width = nv12.shape[1] * 2 // 3, nv12.shape[2]
        if turns % 2:
            height, width = width, height
        new_w, new_h = resized_size(height, width, self.protocol, size=self.size)
        if frames is None:
            frames = torch.empty((total, new_h, new_w, 3), dtype=torch.uint8, device=nv12.device)
        if (new_h, new_w) != frames.shape[1:3]:
            raise VideoError(f"{path}: a sampled frame has another size than the ones before")
        out = frames[int(rows[0]) : int(rows[-1]) + 1]
        if self.fused and not (full_range or turns):
            fused_nv12.nv12_resize(nv12, out)
        else:
            rgb = nv12_to_rgb(nv12, full_range=full_range)
            out.copy_(self.resize(torch.rot90(rgb, turns, dims=(1, 2)).contiguous() if turns else rgb))
        return frames


class NvjpegReader(FrameReader):
    """Rawframe directories through nvJPEG: the sampled JPEG files, read by the calling thread, and decoded together
    with the other threads' videos in one call (``Coalesced``: nvJPEG's batched decoder is fast on large batches,
    and torchvision serialises its calls behind one lock anyway). One reader serves every decode thread."""

    name = "nvjpeg"
    shared = True

    def __init__(self, device: torch.device, protocol: ViewProtocol, size: int, *, decode=None, most: int = 16) -> None:
        super().__init__(device, protocol, size)
        if decode is None:
            from torchvision.io import ImageReadMode, decode_jpeg

            def decode(data):
                return decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)

        self.decode = decode  # list of uint8 file contents -> list of (3, H, W) images
        self.decoded = Coalesced(self._decode_group, most)

    def read(self, path, sample, num_frames=None, *, offset=0):
        source = RawframeSource(path, num_frames, offset=offset)
        count = source.frame_count_hint()
        if count == 0:
            raise VideoError(f"{path}: no decodable frames")
        indices = sample(count)
        planned = np.unique(indices)
        data = []
        for index in planned.tolist():
            frame = source.frame_path(index)
            try:
                data.append(torch.from_numpy(np.fromfile(frame, dtype=np.uint8)))
            except OSError as e:
                raise VideoError(f"{frame}: cannot read frame ({e.strerror or e})") from e
            if not len(data[-1]):
                raise VideoError(f"{frame}: not a readable image")
            reason = jpeg_refusal(data[-1][:4096].numpy().tobytes())  # the frame header comes first
            if reason is not None:
                raise HandOver(f"{path}: {frame.name} is {reason}")
        return count, indices, self.decoded((path, data)), np.searchsorted(planned, indices)

    def _decode_group(self, videos: list[tuple[str, list[torch.Tensor]]]) -> list[torch.Tensor | Exception]:
        """Several videos' files in one decode call; each video's frames stacked and resized (on this thread's
        stream, complete before the other threads take them). A failed call is retried video by video, so a broken
        file fails its own video only."""
        try:
            images = self.decode([data for _, files in videos for data in files])
        except RuntimeError as e:  # torchvision names no file
            if len(videos) > 1:
                return [self._decode_group([video])[0] for video in videos]
            return [VideoError(f"{videos[0][0]}: a sampled frame is not a readable JPEG ({first_line(e)})")]
        frames, start = [], 0
        for path, files in videos:
            mine, start = images[start : start + len(files)], start + len(files)
            if len({tuple(image.shape) for image in mine}) > 1:
                frames.append(VideoError(f"{path}: its frames differ in size"))
                continue
            rgb = torch.stack(mine).permute(0, 2, 3, 1)  # (K, 3, H, W) -> (K, H, W, 3)
            frames.append(self.resize(rgb).contiguous())
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()
        return frames


class Coalesced:
    """Calls from many threads answered by one call of ``group``: a caller that finds no group running takes its
    own item and every item waiting (up to ``most``), runs them and hands each thread its answer (a group commit).
    ``group`` returns one answer per item, an exception instance for an item that failed (raised in its thread)."""

    def __init__(self, group: Callable[[list], list], most: int) -> None:
        self.group, self.most = group, most
        self.cond = threading.Condition()
        self.waiting: list[_Call] = []
        self.running = False
        self.sizes: list[int] = []  # items per group call, for benchmarks and tests

    def __call__(self, item):
        call = _Call(item)
        with self.cond:
            self.waiting.append(call)
            while self.running and not call.done:
                self.cond.wait()
            leads = not call.done  # nobody runs a group: this thread runs one, its own item first
            if leads:
                self.waiting.remove(call)
                calls = [call, *self.waiting[: self.most - 1]]
                del self.waiting[: self.most - 1]
                self.running = True
        if leads:
            try:
                answers = self.group([c.item for c in calls])
            except BaseException as e:
                answers = [e] * len(calls)
            with self.cond:
                for c, answer in zip(calls, answers, strict=True):
                    c.answer, c.done = answer, True
                self.sizes.append(len(calls))
                self.running = False
                self.cond.notify_all()
        if isinstance(call.answer, BaseException):
            raise call.answer
        return call.answer


class _Call:
    def __init__(self, item) -> None:
        self.item, self.answer, self.done = item, None, False


class PyNvVideoCodecFrames:
    """``path -> (count hint, batches of NV12 frames)`` through one PyNvVideoCodec ``SimpleDecoder``, reused.

    The decoder is made on the first call and writes its frames on the CUDA stream current then (``on_stream``; False:
    the default stream, which NVIDIA's decoder synchronises after every frame: the old behaviour, for benchmarks)."""

    def __init__(self, device: torch.device, batch: int = NVDEC_BATCH, on_stream: bool = True) -> None:
        self.batch, self.device, self.on_stream = batch, device, on_stream
        try:
            import PyNvVideoCodec as nvc
        except ImportError as e:
            raise I3DError(f"--decoder nvdec needs PyNvVideoCodec ({INSTALL_HINT}): {e}") from e
        self.nvc, self.gpu = nvc, device.index or 0
        self.decoder, self.stream = None, 0  # stream: the raw handle the decoder writes on (0: the default stream)

    def in_order(self) -> bool:
        """Whether the decoder writes its frames on the current stream (not the default one): then that stream
        orders a batch's reads before the next batch's writes to the same surfaces, with no wait on the host."""
        return self.stream != 0 and self.stream == torch.cuda.current_stream(self.device).cuda_stream

    def _open(self, path: str):
        if not Path(path).is_file():
            raise VideoError(f"{path}: no such file")
        try:
            if self.decoder is None:
                self.decoder = self._make(path)
            else:
                self.decoder.reconfigure_decoder(path)
        except Exception as e:  # PyNvVideoCodec raises plain exceptions
            self.decoder = None
            raise VideoError(f"{path}: NVDEC cannot open it ({first_line(e)})") from e

    def _make(self, path: str):
        """A decoder on the current stream; on the default stream (said once) if PyNvVideoCodec refuses that one."""
        stream = torch.cuda.current_stream(self.device).cuda_stream if self.on_stream else 0
        make = partial(
            self.nvc.SimpleDecoder,
            path,
            gpu_id=self.gpu,
            use_device_memory=True,
            output_color_type=self.nvc.OutputColorType.NATIVE,
        )
        try:
            decoder = make(cuda_stream=stream)
        except Exception as e:
            if not stream:
                raise
            decoder = make(cuda_stream=0)  # raises again for a video it cannot open
            logging.getLogger("i3d_infer").warning(
                "nvdec: the decoder refused this thread's CUDA stream (%s): the default stream instead", first_line(e)
            )
            self.on_stream, stream = False, 0
        self.stream = stream
        return decoder

    def __call__(self, path: str) -> tuple[int, Iterator[list[torch.Tensor]]]:
        self._open(path)
        count = len(self.decoder)
        return count, self._batches(count)

    def _batches(self, count: int) -> Iterator[list[torch.Tensor]]:
        """Batches up to the stream's frame count: SimpleDecoder decodes no frame past it (it warns instead)."""
        done = 0
        while done < count:
            frames = self.decoder.get_batch_frames(min(self.batch, count - done))
            if not frames:
                return
            done += len(frames)
            yield frames  # DLPack views of decoder surfaces, valid until the next call


def consumer_stream(device: torch.device) -> int | None:
    """The current stream as DLPack's ``__dlpack__(stream=...)`` takes it (1: the legacy default stream), None on
    the CPU."""
    return (torch.cuda.current_stream(device).cuda_stream or 1) if device.type == "cuda" else None


def wrap(frame, stream: int | None) -> torch.Tensor:
    """A DLPack producer's frame as a tensor, asked once with the consumer's ``stream``: ``torch.from_dlpack(frame)``
    first offers ``max_version``, which PyNvVideoCodec's ``__dlpack__`` rejects with a TypeError, every frame."""
    return torch.from_dlpack(frame.__dlpack__() if stream is None else frame.__dlpack__(stream=stream))


def _event(tensor: torch.Tensor):
    """A CUDA event recorded on the current stream after ``tensor`` was written (None on the CPU)."""
    if not tensor.is_cuda:
        return None
    event = torch.cuda.Event()
    event.record()
    return event


def make_reader(decoder: str, device: torch.device, protocol: ViewProtocol, *, size: int) -> FrameReader:
    if decoder == "nvdec":
        return NvdecReader(device, protocol, size)
    if decoder == "nvjpeg":
        return NvjpegReader(device, protocol, size)
    raise ValueError(f"unknown GPU decoder {decoder!r}; choose one of {', '.join(GPU_DECODERS)}")
