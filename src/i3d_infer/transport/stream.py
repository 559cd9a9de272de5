"""The overlapped loop: decode workers -> assembler thread -> the model (caller's thread) -> a writer thread.

While the model runs batch k, batch k+1 waits ready (on the GPU: copied and gathered on a side stream) and batch
k+2 is being assembled from shared memory; logits come back to the host asynchronously (pinned memory, an event)
and are consumed by a writer thread, so neither the copy back nor the writer's fsync stalls the next model call.
Batches stay in list order end to end.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.datasets import Sample, VideoDataset
from ..errors import I3DError
from .batches import Batch, DeviceAssembler, HostAssembler
from .decoding import Decoding
from .gpu import decode_stream
from .slots import slot_bytes

_DONE = object()
ONE_WORKER = Decoding()  # one decode process, no timeout


def background(make: Callable[[], Iterator[Any]], depth: int = 1) -> Iterator[Any]:
    """Iterate ``make()`` in a thread of its own, at most ``depth`` items ahead; its exceptions are raised here in
    order. Closing this generator stops the thread and closes the source there (the source never changes
    threads: the decode pool lives and dies in it)."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        source = None
        try:
            source = make()
            for item in source:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as e:  # handed to the consumer, raised there
            put((None, e))
        finally:
            if source is not None and hasattr(source, "close"):
                source.close()

    thread = threading.Thread(target=run, name="i3d-assembler", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class OrderedWriter:
    """Applies ``fn`` to submitted items in a thread, in order; ``close()`` waits for all and raises its error."""

    def __init__(self, fn: Callable[[Any], None], depth: int = 4) -> None:
        self.fn = fn
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="i3d-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.items.get()) is not _DONE:
            if self.error is None:
                try:
                    self.fn(item)
                except BaseException as e:  # raised in the submitting thread
                    self.error = e

    def submit(self, item: Any) -> None:
        if self.error is not None:
            raise self.error
        self.items.put(item)

    def close(self) -> None:
        self.items.put(_DONE)
        self.thread.join()
        if self.error is not None:
            raise self.error


@dataclass
class Pending:
    """A batch whose model call was launched: ``result()`` waits for its logits on the host."""

    batch: Batch
    logits: Any = None  # host array, or pinned tensor filled by an async copy (CUDA)
    done: Any = None  # CUDA event after the copy back
    started: Any = None  # CUDA event before the model call
    seconds: float = 0.0  # host backends: the call's wall time
    waited: float = 0.0  # seconds the model's thread waited for this batch to be assembled

    def result(self) -> tuple[np.ndarray | None, float]:
        """``(logits (n, classes) or None, model seconds)``."""
        if self.done is not None:
            self.done.synchronize()
            logits = self.logits.numpy() if self.logits is not None else None  # None: no model (data path alone)
            return logits, self.started.elapsed_time(self.done) / 1000
        return self.logits, self.seconds


class ModelCall:
    """Launches a backend on a batch: asynchronously on CUDA for the torch backend, synchronously elsewhere.
    ``backend=None`` runs no model (``--decode-only``): a batch is done when its views are ready."""

    def __init__(self, backend, device) -> None:
        self.backend = backend
        self.device = device  # torch.device where views are gathered, or None (host)

    def __call__(self, batch: Batch) -> Pending:
        views, batch.views = batch.views, None  # the views go with the call: no batch waiting to be written holds them
        if views is None or (self.backend is None and self.device is None):
            return Pending(batch)
        if self.device is None:
            start = time.perf_counter()
            logits = self.backend.compute(self.backend.prepare(views))
            return Pending(batch, logits, seconds=time.perf_counter() - start)
        import torch

        stream = torch.cuda.current_stream(self.device)
        stream.wait_event(batch.ready)
        views.record_stream(stream)  # allocated on the assembler's stream, now in use on this one
        started = stream.record_event(torch.cuda.Event(enable_timing=True))
        if self.backend is None:
            return Pending(batch, done=stream.record_event(torch.cuda.Event(enable_timing=True)), started=started)
        out = self.backend.forward(views)  # (n, classes) float32 on the device
        host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
        host.copy_(out, non_blocking=True)
        done = stream.record_event(torch.cuda.Event(enable_timing=True))
        return Pending(batch, host, done, started)


def device_of(backend, device: str):
    """The torch device to gather views on: the backend's input device (None for a host backend); with no backend
    (the data path alone), ``device`` when it is a GPU."""
    where = backend.input_device if backend is not None else (device if device.startswith("cuda") else None)
    if where is None:
        return None
    import torch

    return torch.device(where)


def gpu_decoding_device(decoder: str):
    """The GPU a GPU decoder runs on when the model is not on one (a host backend): the current CUDA device."""
    import torch

    if not torch.cuda.is_available():
        raise I3DError(f"--decoder {decoder} decodes on a GPU, and torch sees no CUDA device here")
    return torch.device("cuda", torch.cuda.current_device())


def refuse_failures(samples: list[Sample]) -> None:
    """``--strict``: the first unreadable video of a batch stops the run, with its one-line reason."""
    failed = next((s for s in samples if s.error is not None), None)
    if failed is not None:
        raise I3DError(f"{failed.error} (--strict)")


def feed(
    dataset: VideoDataset,
    batches: list[list[int]],
    backend,
    *,
    decoding: Decoding = ONE_WORKER,
    strict: bool = False,
    device: str = "cpu",
) -> Iterator[Pending]:
    """Launch the model on each batch of list indices in turn, decoding (as ``decoding`` says) and assembling ahead.

    Yields one :class:`Pending` per batch, in order; ``backend=None`` measures the data path alone (views still
    gathered, on ``device``). With ``strict``, the first unreadable video raises :class:`I3DError` after the
    batches before it.
    """
    batch_size = max((len(b) for b in batches), default=1)
    target = device_of(backend, device)
    decoding_device = None
    if decoding.gpu is not None:
        decoding_device = target or gpu_decoding_device(decoding.gpu.decoder)
    indices = [i for b in batches for i in b]
    stream = decode_stream(dataset, indices, decoding, batch_size=batch_size, device=decoding_device)
    assemble = DeviceAssembler(target, batch_size * slot_bytes(dataset)) if target is not None else HostAssembler()
    call = ModelCall(backend, target)

    def assembled() -> Iterator[Batch]:
        decoded = iter(stream)
        for batch in batches:
            group = [next(decoded) for _ in batch]
            if strict:
                try:
                    refuse_failures([d.sample for d in group])
                except I3DError:
                    for d in group:
                        stream.release(d)
                    raise
            yield assemble(group, stream.release)

    batches_ready = background(assembled)
    try:
        while True:
            start = time.perf_counter()
            batch = next(batches_ready, None)
            if batch is None:
                return
            pending = call(batch)
            pending.waited = time.perf_counter() - start - pending.seconds
            yield pending
    finally:
        batches_ready.close()
        stream.close()
