"""What the ONNX backends share: reading an exported graph's input contract and feeding it batches of views."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import I3DError
from ..model.weights import DEFAULT_WEIGHTS, Preprocessing


def require(module: str, extra: str):
    """Import an optional dependency, or fail with a one-line install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise I3DError(f"this backend needs {module}: pip install 'i3d-infer[{extra}]'") from None


class OnnxGraphBackend:
    """Feeds uint8 views to a graph exported by ``i3d export`` (input ``video`` ``(B, V, 3, T, H, W)``).

    Subclasses set ``self.batch`` (an int, or None when the batch is dynamic), ``self.views_per_video``,
    ``self.input_dtype`` and ``self.output_name``, and implement :meth:`run`.
    """

    name = "onnx"
    device = "cpu"
    input_device = None  # host arrays in (ONNX Runtime on CUDA copies them itself)
    batch: int | None
    views_per_video: int
    input_dtype: np.dtype
    output_name: str
    max_videos = 8  # per call when the batch is dynamic: bounds host memory

    def __init__(self, path: str | os.PathLike, preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise I3DError(f"{self.path}: ONNX model not found")
        self.mean = np.array(preprocessing.mean, np.float32).reshape(1, 1, 3, 1, 1, 1)
        self.std = np.array(preprocessing.std, np.float32).reshape(1, 1, 3, 1, 1, 1)

    def check_contract(
        self, input_name: str, shape: list, output_names: list[str], *, input_dtype, output_shape: list
    ) -> None:
        """Check that the graph is one of ours and remember its batch, views and input type. Per-view outputs only:
        ``logits`` (classes) or ``features`` (the pooled 2048-d backbone, for ``i3d features``)."""
        per_view = [name for name in ("logits", "features") if name in output_names]
        if input_name != "video" or len(shape) != 6 or not per_view:
            raise I3DError(
                f"{self.path}: not an i3d-infer clip-logits model (input 'video' (B, V, 3, T, H, W) and output "
                f"'logits' expected, got input {input_name!r} {shape} and outputs {output_names}); "
                "export with --output-kind clip-logits"
            )
        self.batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self.views_per_video = int(shape[1])
        # (3, T, H, W); a free dimension (a dynamic time axis) is None and takes any size
        self.view_shape = tuple(s if isinstance(s, int) and s > 0 else None for s in shape[2:])
        self.input_dtype = np.dtype(input_dtype)
        self.output_name = per_view[0]
        self.num_classes = int(output_shape[-1])

    def run(self, video: np.ndarray) -> np.ndarray:
        """Run the graph on one ``(B, V, 3, T, H, W)`` input; returns ``(B·V, C)`` logits."""
        raise NotImplementedError

    def prepare(self, views: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """Split views into graph inputs: ``[(input (B, V, 3, T, H, W), real videos in it), ...]``."""
        n = views.shape[0]
        fits = all(want in (None, got) for want, got in zip(self.view_shape, views.shape[1:], strict=True))
        if n % self.views_per_video or not fits:
            raise I3DError(
                f"{self.path}: takes videos of {self.views_per_video} views of {self.view_shape}, "
                f"got {n} views of {tuple(views.shape[1:])} (export with a matching --shape)"
            )
        videos = views.reshape(n // self.views_per_video, self.views_per_video, *views.shape[1:])
        step = self.batch or self.max_videos
        chunks = []
        for start in range(0, len(videos), step):
            chunk = videos[start : start + step]
            real = len(chunk)
            if self.batch and real < self.batch:  # a static batch: pad with copies, drop their outputs
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - real, axis=0)])
            chunks.append((self.to_input(chunk), real))
        return chunks

    def compute(self, chunks: list[tuple[np.ndarray, int]]) -> np.ndarray:
        outputs = [self.run(x)[: real * self.views_per_video] for x, real in chunks]
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def __call__(self, views: np.ndarray) -> np.ndarray:
        return self.compute(self.prepare(views))

    def to_input(self, videos: np.ndarray) -> np.ndarray:
        """uint8 videos -> the graph's input type (float32 graphs take normalized input, like the seed's)."""
        if self.input_dtype == np.uint8:
            return np.ascontiguousarray(videos)
        return ((videos.astype(np.float32) - self.mean) / self.std).astype(self.input_dtype)
