"""A batch's model input gathered from its videos' distinct frames: on the host, or on the GPU.

``gather_views`` is the one place views are made from frames in the transport: ``frames[table]`` are the clips,
each crop of them permuted to ``(3, T, size, size)``; it is bit for bit ``VideoFrames.views()`` (tested), on any
torch device. ``HostAssembler`` gathers into host buffers allocated once (a ring, so the model can read one while
the next is filled); ``DeviceAssembler`` copies the frames into pinned host memory allocated once, sends them to
the GPU on a side stream and gathers there, so the host never builds or copies the ~2.5x larger views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.datasets import Sample
from ..data.pipeline import VideoFrames
from .slots import Decoded

RING = 3  # buffers in turn: the model reads one, one waits in the queue, one is being filled


def gather_views(frames: torch.Tensor, video: VideoFrames, out: torch.Tensor) -> None:
    """Write ``video``'s views (crop-major) into ``out`` (uint8 ``(views, 3, T, size, size)``) from ``frames``
    (uint8 ``(F, H, W, 3)``, the video's distinct frames, on ``out``'s device)."""
    table = torch.from_numpy(video.table).to(frames.device, non_blocking=True)
    clips = frames[table]  # (F, H, W, 3) -> (num_clips, T, H, W, 3)
    n, s = video.table.shape[0], video.size
    for k, (x, y) in enumerate(video.crops):
        out[k * n : (k + 1) * n] = clips[:, :, y : y + s, x : x + s].permute(0, 4, 1, 2, 3)  # -> (n, 3, T, s, s)


@dataclass
class Batch:
    """One model call's worth of consecutive list entries."""

    samples: list[Sample]  # every entry of the batch, in list order, failed ones included
    readable: list[Sample]  # those with frames, in order
    views: Any = None  # the model input for ``readable`` (host array or device tensor); None when none is readable
    ready: Any = None  # CUDA event recorded after the views were gathered (device assembler)
    views_per_video: int = 0


class HostAssembler:
    """Gathers views into host buffers allocated once (grown when a batch needs more)."""

    def __init__(self) -> None:
        self.ring: list[torch.Tensor | None] = [None] * RING
        self.turn = 0

    def __call__(self, decoded: list[Decoded], release) -> Batch:
        samples = [d.sample for d in decoded]
        readable = [s for s in samples if s.frames is not None]
        batch = Batch(samples, readable)
        if readable:
            first = readable[0].frames
            per_video = first.num_views
            shape = (len(readable) * per_video, 3, first.table.shape[1], first.size, first.size)
            buffer = self.ring[self.turn]
            if buffer is None or buffer.numel() < math.prod(shape):
                buffer = self.ring[self.turn] = torch.empty(math.prod(shape), dtype=torch.uint8)
            self.turn = (self.turn + 1) % RING
            views = buffer[: math.prod(shape)].view(shape)
            for k, s in enumerate(readable):
                gather_views(torch.from_numpy(s.frames.frames), s.frames, views[k * per_video : (k + 1) * per_video])
            batch.views, batch.views_per_video = views.numpy(), per_video
        for d in decoded:
            release(d)
        return batch


class DeviceAssembler:
    """Frames to the GPU through pinned memory allocated once, on a side stream; views gathered on the GPU.

    The host copies a batch's frames into one of two pinned buffers (after the copy that last read it has
    finished), then queues the host-to-device copy and the gather on its own stream and records an event the
    model's stream waits on. Device tensors come from torch's caching allocator; the consumer marks the views as
    used on its stream (``record_stream``) so their memory is not reused while the model reads them.
    """

    def __init__(self, device: torch.device, capacity: int) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.staging = [torch.empty(capacity, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
        self.copied: list[torch.cuda.Event | None] = [None, None]
        self.turn = 0

    def __call__(self, decoded: list[Decoded], release) -> Batch:
        samples = [d.sample for d in decoded]
        readable = [s for s in samples if s.frames is not None]
        batch = Batch(samples, readable)
        if not readable:
            for d in decoded:
                release(d)
            return batch
        staging = self.staging[self.turn]
        if self.copied[self.turn] is not None:
            self.copied[self.turn].synchronize()  # the copy that read this buffer last is done
        sizes = [s.frames.frames.nbytes for s in readable]
        if sum(sizes) > staging.numel():  # a batch of frames too large for a slot: grow once
            staging = self.staging[self.turn] = torch.empty(sum(sizes), dtype=torch.uint8, pin_memory=True)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        for s, start, end in zip(readable, offsets, offsets[1:], strict=False):
            staging[start:end].copy_(torch.from_numpy(s.frames.frames.reshape(-1)))
        for d in decoded:
            release(d)  # the frames are in pinned memory now
        first = readable[0].frames
        per_video = first.num_views
        shape = (len(readable) * per_video, 3, first.table.shape[1], first.size, first.size)
        with torch.cuda.stream(self.stream):
            frames = staging[: offsets[-1]].to(self.device, non_blocking=True)
            self.copied[self.turn] = self.stream.record_event()
            views = torch.empty(shape, dtype=torch.uint8, device=self.device)
            for k, s in enumerate(readable):
                video = frames[offsets[k] : offsets[k + 1]].view(s.frames.frames.shape)
                gather_views(video, s.frames, views[k * per_video : (k + 1) * per_video])
            batch.ready = self.stream.record_event()
        self.turn ^= 1
        batch.views, batch.views_per_video = views, per_video
        return batch
