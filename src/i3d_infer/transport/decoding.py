"""How a run's videos are decoded: CPU worker processes, GPU decode threads, or both (no torch needed here)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuDecoding:
    """How a run decodes on the GPU."""

    decoder: str  # "nvdec" (video files) | "nvjpeg" (rawframe directories)
    threads: int = 8  # decode sessions at once
    cpu_share: float = 0.0  # fraction of the list decoded by the CPU workers instead, spread evenly


def on_cpu(index: int, share: float) -> bool:
    """Whether list entry ``index`` goes to the CPU workers: every 1/share-th entry, the same in every run."""
    return math.floor((index + 1) * share) > math.floor(index * share)


@dataclass(frozen=True)
class Decoding:
    """The decode stage of a run, handed to the transport whole."""

    workers: int = 1  # decode processes (Ray: concurrent decode tasks); 0 decodes in the assembler thread
    timeout: float | None = None  # seconds one video's decoding may take; past it, a failure naming the file
    gpu: GpuDecoding | None = None  # decode on the GPU (all videos, or those ``gpu.cpu_share`` leaves it)
