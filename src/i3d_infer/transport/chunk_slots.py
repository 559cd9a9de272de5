"""Streamed clip chunks (``i3d features``) cross from decode workers through shared memory, like the evaluation's
frames (``transport.slots``): a worker writes a chunk's frames into a free slot and sends only which slot and the
chunk's tables through the pipe; the consumer makes the chunk's views (a copy) and gives the slot back.

Free slots are handed out through a queue made before the workers fork. A chunk whose frames do not fit a slot, or
that finds no slot free within :data:`WAIT` seconds (the consumer is behind, or a killed worker took a slot with
it), travels through the pipe as before, so nothing ever waits on a lost slot. Slots are sized for the protocol's
frames at aspect ratios up to 16:9 (``slots.MAX_ASPECT``); wider videos take the pipe.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import queue
from dataclasses import dataclass, replace

import numpy as np

from ..data.streaming import ClipChunk
from ..data.transforms import get_protocol
from .slots import MAX_ASPECT, FrameSlots

WAIT = 0.5  # seconds a worker waits for a free slot before sending through the pipe


@dataclass(frozen=True)
class InSlot:
    """Where a chunk's frames are: in place of ``ClipChunk.frames`` on their way through the pipe."""

    slot: int
    shape: tuple[int, ...]
    dtype: str


class ChunkSlots:
    """``count`` slots of shared memory for chunks of ``chunk`` clips of ``clip_len`` frames at the protocol's size
    with ``channels`` channels of ``dtype`` (3 uint8; two-stream items: 5 float32). Create before forking."""

    def __init__(self, count: int, *, chunk: int, clip_len: int, size: int, protocol: str, channels=3, dtype=np.uint8):
        long_side = size if get_protocol(protocol).squash else math.ceil(size * MAX_ASPECT)
        frame_bytes = size * long_side * channels * np.dtype(dtype).itemsize
        self.slots = FrameSlots(count, chunk * clip_len * frame_bytes)  # every clip slot a distinct frame
        self.free = mp.get_context("fork").Queue()
        for slot in range(count):
            self.free.put(slot)
        self.sent = {"slots": 0, "pipe": 0}  # chunks received each way (the consumer's count)

    def send(self, item):
        """Worker side: a chunk with its frames in a slot when one fits and is free; anything else as it is."""
        if not isinstance(item, ClipChunk) or not self.slots.fits(item.frames.shape, item.frames.dtype):
            return item
        try:
            slot = self.free.get(timeout=WAIT)
        except queue.Empty:
            return item
        self.slots.array(slot, item.frames.shape, item.frames.dtype)[...] = item.frames
        return replace(item, frames=InSlot(slot, item.frames.shape, item.frames.dtype.str))

    def receive(self, item) -> tuple[object, int | None]:
        """Consumer side: the item with its frames readable (shared memory while the slot is held) and the slot to
        :meth:`release` once they are copied (None: it came through the pipe)."""
        if not isinstance(item, ClipChunk):
            return item, None
        where = item.frames
        if not isinstance(where, InSlot):
            self.sent["pipe"] += 1
            return item, None
        self.sent["slots"] += 1
        return replace(item, frames=self.slots.array(where.slot, where.shape, np.dtype(where.dtype))), where.slot

    def release(self, slot: int | None) -> None:
        if slot is not None:
            self.free.put(slot)

    def close(self) -> None:
        self.free.close()
        self.slots.close()
