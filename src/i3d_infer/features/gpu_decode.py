"""``i3d features --decoder nvdec|nvjpeg``: the evaluation's GPU readers (``data.gpu.decode``) for the features'
clips.

Decode threads (``--gpu-decoders``), each with its CUDA stream and its reader (NVDEC: a decoder session per thread;
nvJPEG: one reader decoding the threads' videos together), read a video's sampled frames (the dense clips or the
test clips, placed as the streamed CPU reader places them: ``untrimmed_frame_indices``) into GPU memory, exactly the
CPU path's pixels for NVDEC (nvJPEG: a few levels off, as in the evaluation); the clips then reach the model in
chunks of ``--chunk`` clips like the CPU workers' (their views made on the host for now: the GPU's frames of a chunk
are copied back). Videos come back in list order, at most ``threads + 1`` ahead. A video the GPU reader cannot take
(handed over before decoding, or failed) is read by the CPU path in this process, and its index entry says so
(``decoder``: ``"opencv (nvdec hands over: ...)"``); one neither reads is a failure with the CPU's reason.

Not streamed: a GPU-read video's sampled frames are held on the GPU together (dense clips at 256 px: every other
frame, ~0.35 MB each). No timestamps: ``fps`` and the clips' seconds are null for GPU-read videos.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from itertools import islice

import numpy as np
import torch

from ..data.gpu.decode import FrameReader
from ..data.pipeline import sampler
from ..data.sampling import untrimmed_frame_indices
from ..data.streaming import ClipChunk, StreamEnd
from ..errors import HandOver, I3DError, VideoError, first_line
from ..transport.workers import Streamed, stream_tasks
from .plan import FeatureTask


def gpu_messages(job, todo: list[FeatureTask], *, read_cpu: Callable, make_reader: Callable[[], FrameReader],
                 threads: int, device: torch.device) -> Iterator[Streamed]:  # fmt: skip
    """``stream_tasks``' messages for ``todo``, the videos read by GPU threads (see the module docstring);
    ``read_cpu(task)``: the CPU path's generator (``features.run.read_clips``) for the ones they hand back."""
    readers = _Readers(make_reader, device)
    work = partial(_read_on_gpu, job=job, readers=readers)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="i3d-gpu-decode")
    try:
        tasks = iter(enumerate(todo))
        pending = deque((k, task, pool.submit(work, task)) for k, task in islice(tasks, threads + 1))
        while pending:
            k, task, future = pending.popleft()
            following = next(tasks, None)
            if following is not None:
                pending.append((*following, pool.submit(work, following[1])))
            items, reason = future.result()
            if items is not None:
                yield from (Streamed(k, task, "item", item) for item in items)
                yield Streamed(k, task, "done")
            else:
                yield from _on_cpu(k, task, read_cpu, reason=reason, reader=readers.name)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Readers:
    """A reader per thread (or the one every thread shares), with the thread's CUDA stream."""

    def __init__(self, make_reader: Callable[[], FrameReader], device: torch.device) -> None:
        self.make_reader, self.device = make_reader, device
        self.local, self.lock, self.shared, self.name = threading.local(), threading.Lock(), None, ""

    def mine(self) -> tuple[FrameReader, torch.cuda.Stream | None]:
        local = self.local
        if not hasattr(local, "reader"):
            with self.lock:
                local.reader = self.shared or self.make_reader()
                self.shared = local.reader if local.reader.shared else None
                self.name = local.reader.name
            local.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        return local.reader, local.stream


def _read_on_gpu(task: FeatureTask, *, job, readers: _Readers) -> tuple[list | None, str | None]:
    """A decode thread: the video's chunks and end read by the GPU reader, or None and why the CPU should read it
    (``"hands over: ..."``, ``"failed: ..."``)."""
    plan, pre = job.plan, job.weights.preprocessing
    dense = plan.clips == "dense"
    sample = partial(untrimmed_frame_indices, clips=plan.dense) if dense else sampler(pre)
    reader, stream = readers.mine()
    try:
        with torch.cuda.stream(stream):  # a None stream changes nothing
            count, indices, frames, table = reader.read(task.path, sample, task.num_frames, offset=task.offset)
            if stream is not None:
                stream.synchronize()  # complete before the model's side reads them
    except HandOver as e:  # refused before decoding: the CPU's pixels are the reference's
        return None, f"hands over: {str(e).removeprefix(f'{task.path}: ')}"
    except I3DError as e:
        if not isinstance(e, VideoError):
            raise  # the decoder library is missing: the run stops with the install hint
        return None, f"failed: {str(e).removeprefix(f'{task.path}: ')}"
    except (RuntimeError, ValueError) as e:  # the library's own failure, or too short: the CPU path says
        return None, f"failed: {first_line(e)}"
    centres = _centres(indices, count, plan=plan, dense=dense)
    step = plan.chunk if dense else len(indices)
    parts = [slice(k, k + step) for k in range(0, len(indices), step)]
    no_times = np.full((len(indices), 3), np.nan)
    items = [ClipChunk(p.start, frames, table[p], indices[p], centres[p], no_times[p]) for p in parts]
    return [*items, StreamEnd(count, len(indices), None, reader.name, int(frames.shape[0]))], None


def _centres(indices: np.ndarray, count: int, *, plan, dense: bool) -> np.ndarray:
    """Each clip's centre frame as the CPU path records it: the placement's (a too-short video's: its middle),
    the test clips' middle slot."""
    if not dense:
        return indices[:, indices.shape[1] // 2]
    if plan.dense.centre(0) >= count:
        return np.array([count // 2])
    return np.array([plan.dense.centre(k) for k in range(len(indices))])


def _on_cpu(k: int, task: FeatureTask, read_cpu: Callable, *, reason: str, reader: str) -> Iterator[Streamed]:
    """The CPU path's messages for a video the GPU reader handed back, its end recording why."""
    for message in stream_tasks(read_cpu, [task], 0, expected=(VideoError,)):
        value = message.value
        if isinstance(value, StreamEnd):
            value = replace(value, decoder=f"{value.decoder} ({reader} {reason})")
        yield replace(message, index=k, value=value)
