"""What a measurement ran on: library versions and the machine (recorded in benchmark JSON and result.json)."""

from __future__ import annotations

import contextlib
import os
import platform
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
