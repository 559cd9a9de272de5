"""GPU decoding in the data path: decode threads that leave the frames in GPU memory, and the split of a list
between them and the CPU workers.

``GpuDecodeStream`` runs ``threads`` threads, each with its own CUDA stream and reader
(:mod:`i3d_infer.data.gpu.decode`; NVDEC: a decoder session per thread, its decode call releases the GIL; nvJPEG:
one reader that decodes the threads' videos together), and yields the samples in list order, at most ``threads +
batch_size`` ahead. A video the GPU decoder cannot take is read by the CPU decoder in
the same thread, and its sample records that (``decoder``: ``"opencv (nvdec failed: ...)"``); a video neither can
read is a failure with the CPU decoder's reason. ``MergedStream`` interleaves a CPU :class:`DecodeStream` and a
GPU stream by a fixed assignment (:func:`on_cpu`), so every video is decoded by the same decoder in every run, a
resumed or a sharded one too.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import torch

from ..data.datasets import Sample, VideoDataset
from ..data.gpu.decode import FrameReader, make_reader
from ..data.transforms import get_protocol
from ..errors import HandOver, I3DError, first_line
from ..runtime.cuda_graphs import CAPTURE_GATE
from .decoding import Decoding, GpuDecoding, on_cpu
from .slots import Decoded, DecodeStream


class GpuDecodeStream:
    """The samples of ``indices`` in order, their frames decoded into GPU memory by ``threads`` threads."""

    def __init__(
        self,
        dataset: VideoDataset,
        indices: list[int],
        gpu: GpuDecoding,
        *,
        device: torch.device,
        batch_size: int,
        reader: Callable[[], FrameReader] | None = None,
    ) -> None:
        self.dataset, self.indices, self.gpu, self.device = dataset, indices, gpu, device
        self.prefetch = gpu.threads + batch_size
        protocol, size = get_protocol(dataset.protocol), dataset.preprocessing.size
        self.make_reader = reader or (lambda: make_reader(gpu.decoder, device, protocol, size=size))
        self.local, self.lock, self.shared_reader = threading.local(), threading.Lock(), None

    def _reader(self) -> FrameReader:
        """This thread's reader: its own, or the one every thread shares (nvJPEG's, which decodes them together)."""
        with self.lock:
            if self.shared_reader is not None:
                return self.shared_reader
            reader = self.make_reader()
            if reader.shared:
                self.shared_reader = reader
            return reader

    def _work(self, index: int) -> Sample:
        local = self.local
        if not hasattr(local, "reader"):
            with CAPTURE_GATE.work():  # the fused kernel's first-launch check runs on the GPU: never in a capture
                local.reader = self._reader()
                local.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        try:
            with CAPTURE_GATE.work(), torch.cuda.stream(local.stream):  # a None stream changes nothing
                sample = self.dataset.read_with(index, local.reader)
                if local.stream is not None:
                    local.stream.synchronize()  # the frames are complete before another stream reads them
        except HandOver as e:  # refused before decoding: the CPU's pixels are the reference's
            return self._fallback(Sample(index, "", 0, None, str(e)), local.reader, verb="hands over")
        except I3DError:
            raise  # the decoder library is missing: the run stops with the install hint
        except Exception as e:  # the library's own failure (not a bad file) is recorded, and the CPU decodes it
            sample = Sample(index, "", 0, None, first_line(e))
        return self._fallback(sample, local.reader) if sample.error is not None else sample

    def _fallback(self, sample: Sample, reader: FrameReader, verb: str = "failed") -> Sample:
        """The CPU decoder's sample of a video the GPU reader failed on or handed over, recording why (or the CPU's
        own error)."""
        cpu = self.dataset.frames(sample.index)
        if cpu.error is not None:
            return cpu  # unreadable: the CPU decoder's one-line reason
        reason = sample.error.removeprefix(f"{self.dataset.root / cpu.video_id}: ")
        return dataclasses.replace(cpu, decoder=f"{cpu.decoder} ({reader.name} {verb}: {reason})")

    def __iter__(self) -> Iterator[Decoded]:
        pool = ThreadPoolExecutor(self.gpu.threads, thread_name_prefix="i3d-gpu-decode")
        try:
            todo = iter(self.indices)
            pending = deque(pool.submit(self._work, index) for index in islice(todo, self.prefetch))
            while pending:
                sample = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(pool.submit(self._work, following))
                yield Decoded(sample)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def release(self, decoded: Decoded) -> None:
        """Nothing to give back: the frames are freed with the last reference (the assembler's, on its stream)."""

    def close(self) -> None:
        pass


class MergedStream:
    """Samples in list order from a CPU and a GPU stream, each index from the one :func:`on_cpu` assigns."""

    def __init__(self, cpu: DecodeStream, gpu: GpuDecodeStream, routes: list[bool]) -> None:
        self.cpu, self.gpu, self.routes = cpu, gpu, routes

    def __iter__(self) -> Iterator[Decoded]:
        cpu, gpu = iter(self.cpu), iter(self.gpu)
        for route in self.routes:
            yield next(cpu if route else gpu)

    def release(self, decoded: Decoded) -> None:
        self.cpu.release(decoded)  # a no-op for samples without a slot

    def close(self) -> None:
        self.cpu.close()
        self.gpu.close()


def decode_stream(
    dataset: VideoDataset,
    indices: list[int],
    decoding: Decoding,
    *,
    batch_size: int,
    device: torch.device | None = None,
    reader: Callable[[], FrameReader] | None = None,
):
    """The stream of decoded samples for ``indices``: CPU workers, GPU threads, or both by ``cpu_share``."""
    gpu, workers, timeout = decoding.gpu, decoding.workers, decoding.timeout
    if gpu is None:
        return DecodeStream(dataset, indices, workers, timeout=timeout, batch_size=batch_size)
    routes = [on_cpu(index, gpu.cpu_share) for index in indices]
    gpu_indices = [index for index, route in zip(indices, routes, strict=True) if not route]
    gpu_stream = GpuDecodeStream(dataset, gpu_indices, gpu, device=device, batch_size=batch_size, reader=reader)
    if not any(routes):
        return gpu_stream
    cpu_indices = [index for index, route in zip(indices, routes, strict=True) if route]
    return MergedStream(
        DecodeStream(dataset, cpu_indices, workers, timeout=timeout, batch_size=batch_size), gpu_stream, routes
    )
