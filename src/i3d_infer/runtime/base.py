"""The one interface every runtime implements: a uint8 batch of views in, logits out."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

ENGINES = ("eager", "fast")  # of the torch backend
PRECISION_CHOICES = ("fp32", "tf32", "fp16", "bf16")


class Backend(Protocol):
    """Runs the network on a batch of views.

    ``__call__`` takes uint8 ``(n, 3, T, H, W)`` RGB views (normalization happens inside the backend) and returns
    float32 ``(n, num_classes)`` logits.
    """

    name: str  # short name, e.g. "torch"
    device: str  # where it runs, e.g. "cpu" or "cuda:0"
    num_classes: int  # logits per view
    # the GPU whose tensors :meth:`forward` takes (the transport gathers views there); None: host arrays only
    input_device: str | None

    def prepare(self, views: np.ndarray) -> Any:
        """Host-side work and the copy to the device: uint8 views -> what :meth:`compute` takes."""

    def compute(self, prepared: Any) -> np.ndarray:
        """The model itself: prepared input -> float32 ``(n, num_classes)`` logits."""

    def forward(self, views: Any) -> Any:
        """With an ``input_device``: uint8 views already there -> float32 logits there, queued, not waited for."""

    def __call__(self, views: np.ndarray) -> np.ndarray:
        """``compute(prepare(views))``."""
