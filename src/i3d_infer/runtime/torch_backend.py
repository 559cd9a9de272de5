"""PyTorch backend: the eager recognizer on CPU or CUDA, fp32."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import I3DError
from ..model.i3d import Recognizer


def resolve_device(device: str) -> torch.device:
    """Check that ``device`` (``cpu``, ``cuda`` or ``cuda:N``) exists here; a one-line error otherwise."""
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise I3DError(f"invalid device {device!r}: use cpu, cuda or cuda:N") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise I3DError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise I3DError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type != "cpu":
        raise I3DError(f"unsupported device {device!r}: use cpu, cuda or cuda:N")
    return dev


class TorchBackend:
    """The eager PyTorch recognizer; views are run ``max_views`` at a time to bound memory."""

    name = "torch"

    def __init__(self, model: Recognizer, device: str = "cpu", max_views: int | None = None) -> None:
        self.torch_device = resolve_device(device)
        self.device = str(self.torch_device)
        self.model = model.to(self.torch_device).eval()
        # One full-size view needs ~0.3 GB of activations on CPU; a GPU takes a whole video at once.
        self.max_views = max_views or (10 if self.torch_device.type == "cuda" else 4)

    @property
    def num_classes(self) -> int:
        return self.model.network.config.num_classes

    def prepare(self, views: np.ndarray) -> torch.Tensor:
        """uint8 views on the device (through pinned memory on CUDA, without blocking the host)."""
        batch = torch.from_numpy(np.ascontiguousarray(views))
        if self.torch_device.type == "cuda":
            return batch.pin_memory().to(self.torch_device, non_blocking=True)
        return batch

    @torch.inference_mode()
    def compute(self, batch: torch.Tensor) -> np.ndarray:
        outputs = []
        for start in range(0, batch.shape[0], self.max_views):
            chunk = batch[start : start + self.max_views]
            outputs.append(self.model(chunk).float())  # (n, 3, T, H, W) uint8 -> (n, classes)
        return torch.cat(outputs).cpu().numpy()

    def __call__(self, views: np.ndarray) -> np.ndarray:
        return self.compute(self.prepare(views))
