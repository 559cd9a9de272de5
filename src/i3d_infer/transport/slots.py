"""Decoded frames cross from worker processes once, through slots of shared memory allocated once and reused.

The parent maps one anonymous shared region before it forks the decode workers (``mmap(-1, ...)`` is
``MAP_SHARED | MAP_ANONYMOUS``: parent and forked children see the same pages, and it does not count against a
small ``/dev/shm`` as ``shm_open`` segments do). A task is ``(list index, slot)``: the worker writes the video's
distinct sampled frames straight into its slot, row by row as they are decoded, and the pipe carries only the
metadata back (frame indices, the index table, crop offsets: a few kilobytes instead of ~63 MB of views). A video
whose frames do not fit a slot travels through the pipe instead, as does everything where ``fork`` is missing.

Slots are handed out when a task is submitted and returned by the consumer once it has copied the frames
(:meth:`FrameSlots.release`); a worker that hangs or dies is killed before its slot comes back, so no one writes
a slot the consumer reads. There are as many slots as the pool may hold tasks plus one batch being assembled, so
memory is bounded whatever the list length.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import mmap
import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..data.datasets import Sample, VideoDataset
from ..data.decode import worker_threads
from ..data.transforms import get_protocol
from .workers import TaskResult, run_tasks

MAX_ASPECT = 16 / 9  # short-side protocols: slots fit frames up to this aspect ratio (wider ones use the pipe)


def slot_bytes(dataset: VideoDataset) -> int:
    """Bytes of one slot: every clip slot a distinct frame (the worst case) at the protocol's largest frame size."""
    pre = dataset.preprocessing
    long_side = pre.size if get_protocol(dataset.protocol).squash else math.ceil(pre.size * MAX_ASPECT)
    return pre.slot_frames * pre.size * long_side * 3


class FrameSlots:
    """``count`` slots of ``slot_bytes`` bytes each in one shared anonymous mapping (create before forking)."""

    def __init__(self, count: int, slot_bytes: int) -> None:
        self.count, self.slot_bytes = count, slot_bytes
        self._memory = mmap.mmap(-1, count * slot_bytes)
        self._array = np.frombuffer(self._memory, dtype=np.uint8).reshape(count, slot_bytes)
        self._free = list(range(count - 1, -1, -1))

    def acquire(self) -> int:
        if not self._free:  # the slot count is sized so that this cannot happen
            raise RuntimeError(f"all {self.count} frame slots are in use")
        return self._free.pop()

    def release(self, slot: int) -> None:
        self._free.append(slot)

    @property
    def free(self) -> int:
        return len(self._free)

    def fits(self, shape: tuple[int, ...], dtype=np.uint8) -> bool:
        return math.prod(shape) * np.dtype(dtype).itemsize <= self.slot_bytes

    def array(self, slot: int, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
        """The array of ``shape`` (uint8, or ``dtype``) at the start of ``slot`` (shared memory, no copy)."""
        size = math.prod(shape) * np.dtype(dtype).itemsize
        return self._array[slot, :size].view(dtype).reshape(shape)

    def close(self) -> None:
        """Unmap now if no array still points into the slots; otherwise when the last one goes."""
        self._array = None
        with contextlib.suppress(BufferError):
            self._memory.close()


@dataclass(frozen=True)
class Decoded:
    """A decoded sample; its frames are in shared memory while ``slot`` is set (give it back with ``release``)."""

    sample: Sample
    slot: int | None = None


class _SlotWriter:
    """``allocate`` for :func:`read_frames`: the task's slot when the frames fit it, a private array otherwise."""

    def __init__(self, slots: FrameSlots | None, slot: int | None) -> None:
        self.slots, self.slot, self.used = slots, slot, False

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        self.used = self.slots is not None and self.slot is not None and self.slots.fits(shape)  # the last call's
        return self.slots.array(self.slot, shape) if self.used else np.empty(shape, np.uint8)


def _decode(task: tuple[int, int | None], dataset: VideoDataset, slots: FrameSlots | None, *, threads: int):
    """Worker side: decode into the slot (with ``threads`` decoding threads); return the sample without its frames
    (and their shape) when they are there, or with them when they did not fit."""
    index, slot = task
    writer = _SlotWriter(slots, slot)
    sample = dataset.frames(index, writer, threads)
    if sample.frames is None or not writer.used:
        return sample, None
    frames = sample.frames
    return dataclasses.replace(sample, frames=dataclasses.replace(frames, frames=None)), frames.frames.shape


class DecodeStream:
    """The samples of ``indices`` in order, decoded by ``workers`` processes into shared memory.

    Iterate once; :meth:`release` each :class:`Decoded` once its frames are copied. ``workers == 0`` decodes in
    the calling thread. A task that exceeds ``timeout`` seconds or whose worker dies becomes a sample error. Each
    worker decodes with its share of the cores (:func:`i3d_infer.data.decode.worker_threads`).
    """

    def __init__(
        self, dataset: VideoDataset, indices: list[int], workers: int, *, timeout: float | None, batch_size: int
    ) -> None:
        self.dataset, self.indices, self.workers, self.timeout = dataset, indices, workers, timeout
        self.prefetch = workers + batch_size  # finished or running tasks the pool may hold
        forked = "fork" in mp.get_all_start_methods()
        count = self.prefetch + batch_size  # + the batch the consumer is assembling
        self.slots = FrameSlots(count, slot_bytes(dataset)) if workers > 0 and forked else None

    def __iter__(self) -> Iterator[Decoded]:
        if self.workers == 0:
            for index in self.indices:
                yield Decoded(self.dataset.frames(index))
            return
        tasks = ((index, self.slots.acquire() if self.slots else None) for index in self.indices)
        decode = partial(_decode, dataset=self.dataset, slots=self.slots, threads=worker_threads(self.workers))
        for result in run_tasks(
            decode, tasks, self.workers, timeout=self.timeout, ordered=True, prefetch=self.prefetch
        ):
            yield self._receive(result)

    def _receive(self, result: TaskResult) -> Decoded:
        index, slot = result.task
        if result.error is not None:  # timed out or crashed: the worker is dead, its slot free to reuse
            entry = self.dataset.entries[index]
            error = f"{self.dataset.root / entry.video_id}: {result.error}"
            self._free(slot)
            return Decoded(Sample(index, entry.video_id, entry.label, None, error))
        sample, shape = result.value
        if shape is None:  # an error, or frames too large for a slot: they came through the pipe
            self._free(slot)
            return Decoded(sample)
        frames = dataclasses.replace(sample.frames, frames=self.slots.array(slot, shape))
        return Decoded(dataclasses.replace(sample, frames=frames), slot)

    def release(self, decoded: Decoded) -> None:
        """Give the sample's slot back (its frames must not be read afterwards)."""
        self._free(decoded.slot)

    def _free(self, slot: int | None) -> None:
        if slot is not None:
            self.slots.release(slot)

    def close(self) -> None:
        if self.slots is not None:
            self.slots.close()
