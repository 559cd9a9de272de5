"""The machine: what a measurement ran on (versions, cores), and where a run computes (:func:`decide_placement`)."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from importlib import metadata

import numpy as np


def usable_cores() -> int:
    """All cores this process may use (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def versions() -> dict:
    """Library versions and the machine, for the JSON record."""
    import cv2
    import torch

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    for module in ("onnxruntime", "openvino", "av"):
        with contextlib.suppress(ImportError):
            found[module] = __import__(module).__version__
    for distribution in ("torchvision", "triton", "PyNvVideoCodec"):  # GPU decoding; not imported (CUDA libraries)
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[distribution] = metadata.version(distribution)
    if torch.cuda.is_available():
        found["cuda"] = torch.version.cuda
        found["cudnn"] = torch.backends.cudnn.version()
        found["gpu"] = torch.cuda.get_device_name()
    found["cpu"] = platform.processor() or platform.machine()
    return found


@dataclass(frozen=True)
class Placement:
    """Where a run computes and how wide it is, decided once (:func:`decide_placement`) and then only read."""

    device: str  # cpu, cuda or cuda:N
    precision: str  # torch: fp32 | tf32 | fp16 | bf16; the exported graphs' own otherwise ("fp32")
    batch_size: int  # videos per model call
    workers: int  # decode processes (0: decode in the assembler thread)
    note: str | None = None  # the line saying what was chosen for the GPU (print it once), None if nothing was


def decide_placement(
    *,
    backend: str = "torch",
    device: str | None = None,
    engine: str | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    batched: bool = True,
) -> Placement:
    """Fill in what the user left unset (None) to fit this machine.

    With a CUDA GPU (torch backend): the GPU, fp16 (the fast engine; eager stays fp32), batch 8 and a decode
    process per core but one. Without: the CPU, fp32, batch 1, one decode process. ``batched``: the command has
    batches and workers (the note names them).
    """
    torch_backend = backend == "torch"
    detected = device is None and torch_backend and cuda_available()
    device = device or ("cuda" if detected else "cpu")
    gpu = device.startswith("cuda")
    chosen = []
    if precision is None:
        precision = "fp16" if gpu and torch_backend and engine != "eager" else "fp32"
        chosen += [f"{engine or 'fast'} engine, {precision}"] if gpu and torch_backend else []
    if batch_size is None:
        batch_size = 8 if gpu else 1
        chosen += ["batch size 8"] if gpu and batched else []
    if workers is None:
        workers = gpu_workers() if gpu else 1
        chosen += [f"workers {workers}"] if gpu and batched else []
    note = None
    if detected or (chosen and cuda_available()):  # an explicit --device cuda without CUDA fails in a moment
        note = f"for the GPU: {', '.join([f'device {device}', *chosen])} (--device cpu, --precision fp32 ... to change)"
    return Placement(device, precision, batch_size, workers, note)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_available_before_fork() -> bool:
    """Whether torch sees a GPU, asked through NVML (``PYTORCH_NVML_BASED_CUDA_CHECK``) so that this process can
    still fork workers that use CUDA themselves (the plain check initialises CUDA here, which forked children cannot
    inherit)."""
    import torch

    previous = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    try:
        return torch.cuda.is_available()
    finally:
        if previous is None:
            del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
        else:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = previous


def gpu_workers() -> int:
    """A decode process per core but one (the model's thread), shared among torchrun's processes on this node."""
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, ((os.cpu_count() or 2) - per_node) // per_node)
