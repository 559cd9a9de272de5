"""Backends: a uint8 batch of views in, logits out (torch, onnxruntime, openvino)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import I3DError
from ..model.weights import DEFAULT_WEIGHTS, Weights
from .base import Backend

BACKENDS = ("torch", "onnxruntime", "openvino")


@dataclass(frozen=True)
class BackendSpec:
    """Which runtime runs the network, with what weights, where."""

    backend: str = "torch"  # one of BACKENDS
    checkpoint: str | os.PathLike | None = None  # torch: path or URL; None: the official checkpoint
    model: str | os.PathLike | None = None  # onnxruntime / openvino: an exported .onnx (or OpenVINO .xml) file
    device: str = "cpu"  # cpu, cuda or cuda:N
    threads: int | None = None  # CPU threads (None: all cores)
    random_weights: bool = False  # torch: seeded random weights instead of a checkpoint (timing, the demo)
    engine: str | None = None  # torch: eager | fast (None: fast)
    precision: str = "fp32"  # torch: fp32 | tf32 | fp16 | bf16
    features: bool = False  # torch: the pooled 2048-d backbone features instead of logits (ONNX: the file decides)


def make_backend(spec: BackendSpec = BackendSpec(), weights: Weights = DEFAULT_WEIGHTS) -> Backend:
    """Build a backend: ``torch`` from a checkpoint (None: the official one; ``random_weights``: none at all) with
    an ``engine`` (eager / fast) and ``precision``; ``onnxruntime`` / ``openvino`` from an exported ``model`` file."""
    backend, checkpoint, model, device, threads = spec.backend, spec.checkpoint, spec.model, spec.device, spec.threads
    engine, precision = spec.engine, spec.precision
    if threads:
        import torch

        torch.set_num_threads(threads)
    if backend == "torch":
        if model is not None:
            raise I3DError("--model is for the onnxruntime and openvino backends; torch takes --checkpoint")
        from ..model.checkpoint import load_model, random_model
        from .torch_backend import TorchBackend

        recognizer = random_model(weights) if spec.random_weights else load_model(checkpoint, weights)
        if spec.features:
            recognizer.features_only()
        return TorchBackend(recognizer, device, engine=engine, precision=precision)
    if engine not in (None, "eager") or precision != "fp32":
        raise I3DError(f"--engine and --precision are for the torch backend; {backend} runs the exported graph")
    if backend in ("onnxruntime", "openvino"):
        if model is None:
            raise I3DError(f"the {backend} backend needs --model FILE.onnx (make one with i3d export)")
        if backend == "onnxruntime":
            from .onnxruntime_backend import OnnxRuntimeBackend

            return OnnxRuntimeBackend(model, device, threads, preprocessing=weights.preprocessing)
        from .openvino_backend import OpenVINOBackend

        return OpenVINOBackend(model, device, threads, preprocessing=weights.preprocessing)
    raise I3DError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
