"""CUDA graphs for the torch backend, and the gate that keeps other threads' GPU work out of their captures."""

from __future__ import annotations

import contextlib
import threading

import torch


class CaptureGate:
    """Keeps other threads' GPU work (decoders, the batch assembler) out of CUDA graph captures: that work runs side
    by side (``with CAPTURE_GATE.work():``), never during a capture (``capture()``).

    Seen on an H200 even with ``capture_error_mode="thread_local"``: PyNvVideoCodec's calls during another thread's
    capture abort the process (CUDA_ERROR_STREAM_CAPTURE_ISOLATION), and torch refuses the assembler's pageable
    host-to-device copy of an index table. A capture waits for the work in flight (one decoder call or one
    batch's gather) and holds new work until it ends; captures happen once per batch shape.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._capturing = False

    @contextlib.contextmanager
    def work(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._capturing)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def capture(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._capturing)
            self._capturing = True
            self._cond.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            with self._cond:
                self._capturing = False
                self._cond.notify_all()


CAPTURE_GATE = CaptureGate()


class CudaGraphs:
    """Replays one captured CUDA graph per input shape: no host synchronisation or kernel launches per call."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.graphs: dict[tuple, tuple] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        if key not in self.graphs:
            static_in = x.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up outside the capture (cuDNN autotuning, allocator)
                    self.module(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: the evaluation's assembler thread keeps copying and allocating on its own stream
            # while this thread captures; only this thread's calls must be capture-safe.
            with CAPTURE_GATE.capture(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
                static_out = self.module(static_in)
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()
