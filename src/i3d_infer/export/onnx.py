"""ONNX export of the recognizer, always verified: checker, then the exported graph on a real video vs eager PyTorch.

The exported graph takes ``video``: ``(B, V, 3, T, H, W)`` (uint8 RGB, or float32 already normalized like the
seed's) and returns ``logits`` ``(B·V, classes)`` (the seed's clip logits), ``probs`` ``(B, classes)`` (clip-fused
with prob fusion inside the graph) or ``features`` ``(B·V, 2048)`` (the pooled backbone, for ``i3d features``).
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import I3DError, first_line
from ..model.i3d import Recognizer
from ..model.weights import Preprocessing, Weights
from . import DEFAULT_OPSET, DEFAULT_SHAPE, INPUT_KINDS, OUTPUT_KINDS

FP32_TOLERANCE = 1e-4  # max |onnx - torch| / max |torch| over all outputs
FP16_TOLERANCE = 2e-2  # measured 2e-3..6e-3 on the sample videos with OpenVINO/ONNX Runtime (benchmarks/RESULTS.md)


@dataclass(frozen=True)
class ExportOptions:
    """What ``i3d export`` writes."""

    shape: tuple[int, int, int, int, int, int] = DEFAULT_SHAPE  # (B, V, 3, T, H, W)
    dynamic_batch: bool = False  # B is a free dimension named "batch"
    dynamic_time: bool = False  # T is a free dimension named "time" (the Inception models' whole-video input)
    opset: int = DEFAULT_OPSET
    input_kind: str = "uint8"  # "uint8": normalization inside the graph; "float32": normalized input (the seed's)
    output_kind: str = "clip-logits"  # "clip-logits" -> logits (B·V, C); "video-probs" -> probs (B, C);
    # "features" -> features (B·V, 2048): the pooled backbone, before the head (i3d features)
    simplify: bool = False  # run onnxslim on the exported graph
    fp16: bool = False  # network weights and activations in float16; inputs and outputs keep their types

    def __post_init__(self) -> None:
        if len(self.shape) != 6 or self.shape[2] != 3 or min(self.shape) < 1:
            raise I3DError(f"--shape must be B V 3 T H W with positive sizes, got {' '.join(map(str, self.shape))}")
        if self.input_kind not in INPUT_KINDS:
            raise I3DError(f"--input must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}")
        if self.output_kind not in OUTPUT_KINDS:
            raise I3DError(f"--output-kind must be one of {', '.join(OUTPUT_KINDS)}, got {self.output_kind!r}")
        if not 11 <= self.opset <= 20:
            raise I3DError(f"--opset must be between 11 and 20, got {self.opset}")

    @property
    def output_name(self) -> str:
        return {"clip-logits": "logits", "video-probs": "probs", "features": "features"}[self.output_kind]

    @property
    def tolerance(self) -> float:
        return FP16_TOLERANCE if self.fp16 else FP32_TOLERANCE


class ExportWrapper(nn.Module):
    """The recognizer with the seed's I/O: ``(B, V, 3, T, H, W)`` in, clip logits or fused probabilities out."""

    def __init__(self, recognizer: Recognizer, options: ExportOptions) -> None:
        super().__init__()
        self.normalize = recognizer.normalize if options.input_kind == "uint8" else None
        self.dtype = torch.float16 if options.fp16 else torch.float32
        self.network = copy.deepcopy(recognizer.network).to(self.dtype)
        if options.output_kind == "features":
            self.network.drop_head()
        self.views = options.shape[1]
        self.fuse = options.output_kind == "video-probs"

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = video.flatten(0, 1)  # (B, V, 3, T, H, W) -> (B·V, 3, T, H, W)
        x = self.normalize(x) if self.normalize is not None else x.float()
        logits = self.network(x.to(self.dtype)).float()  # -> (B·V, C)
        if not self.fuse:
            return logits
        return logits.view(-1, self.views, logits.shape[-1]).softmax(dim=2).mean(dim=1)  # -> (B, C)


def read_inputs(paths: list, shape: tuple[int, ...], preprocessing: Preprocessing) -> list[np.ndarray]:
    """One uint8 ``(1, V, 3, T, H, W)`` graph input per video: the checkpoint's protocol and preprocessing made to
    the graph's view shape (V clips of T frames at H×W; a whole-video model's T frames from the video's middle)."""
    from ..data.pipeline import read_video

    _, v, _, t, h, w = shape
    if h != w:
        raise I3DError(f"real-video inputs need square views; got H={h}, W={w}")
    squash = preprocessing.protocol == "seed"  # the seed's frames are the view: squashed to its size
    pre = replace(preprocessing, num_clips=v, clip_len=t, size=h if squash else preprocessing.size, crop=h)
    if pre.whole_video:
        pre = replace(pre, sampling="0.x", frame_interval=1)
    return [read_video(p, pre.protocol, pre).views[None] for p in paths]


def example_input(options: ExportOptions, preprocessing: Preprocessing, video: str | os.PathLike | None) -> np.ndarray:
    """A real preprocessed input of the export shape: ``video`` (or the sample videos, one per batch entry);
    float32 input is normalized on the host like the seed's data pipeline."""
    from ..prepare.sample_videos import sample_videos

    b = options.shape[0]
    if options.shape[4] != options.shape[5]:
        raise I3DError(f"verification reads square views; got {options.shape[4]}x{options.shape[5]} (use --no-verify)")
    paths = [video] * b if video else [sample_videos()[i % 3] for i in range(b)]
    batch = np.concatenate(read_inputs(paths, options.shape, preprocessing))  # (B, V, 3, T, H, W) uint8
    if options.input_kind == "uint8":
        return batch
    mean = np.array(preprocessing.mean, np.float32).reshape(1, 1, 3, 1, 1, 1)
    std = np.array(preprocessing.std, np.float32).reshape(1, 1, 3, 1, 1, 1)
    return ((batch.astype(np.float32) - mean) / std).astype(np.float32)


def export_onnx(
    recognizer: Recognizer, output: str | os.PathLike, options: ExportOptions, *, weights: Weights | None = None
) -> Path:
    """Write the ONNX graph (TorchScript exporter, which writes opsets 11-20 natively); returns its path. ``weights``:
    the description recorded in the graph's metadata."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(recognizer, options).eval()
    dtype = torch.uint8 if options.input_kind == "uint8" else torch.float32
    dummy = torch.zeros(options.shape, dtype=dtype)
    axes = {0: "batch"} if options.dynamic_batch else {}
    axes.update({3: "time"} if options.dynamic_time else {})
    dynamic = {"video": axes, options.output_name: {0: "batch"} if options.dynamic_batch else {}} if axes else None
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(output),
            input_names=["video"],
            output_names=[options.output_name],
            opset_version=options.opset,
            dynamic_axes=dynamic,
            dynamo=False,
        )
    if options.simplify:
        simplify(output)
    if weights is not None:
        label(output, weights)
    return output


WEIGHTS_KEY = "i3d-infer weights"  # metadata: the published checkpoint whose description (preprocessing) applies


def label(path: Path, weights: Weights) -> None:
    """Record in the graph's metadata which checkpoint description it was exported from (read by
    :func:`weights_of`), so the ONNX backends run it with its own preprocessing."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    model.metadata_props.add(key=WEIGHTS_KEY, value=weights.name)
    onnx.save(model, str(path))


def weights_of(path: str | os.PathLike) -> str | None:
    """The checkpoint description an exported graph names, or None (older exports, other files)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not an ONNX file: the backend says so when it opens it
        return None
    return next((p.value for p in model.metadata_props if p.key == WEIGHTS_KEY), None)


def simplify(path: Path) -> None:
    """Simplify the graph in place with onnxslim (constant folding, dead nodes, fused shape ops)."""
    try:
        import onnxslim
    except ImportError:
        raise I3DError("--simplify needs onnxslim: pip install 'i3d-infer[export]'") from None
    import onnx

    onnx.save(onnxslim.slim(onnx.load(str(path))), str(path))


@dataclass(frozen=True)
class Verification:
    """How the exported graph compared with eager PyTorch on the same real input."""

    max_abs: float  # max |onnx - torch| over all outputs
    max_rel: float  # max_abs / max |torch|
    tolerance: float  # the max_rel allowed
    output_shape: tuple[int, ...]

    @property
    def passed(self) -> bool:
        return self.max_rel <= self.tolerance


def verify_onnx(
    path: str | os.PathLike, recognizer: Recognizer, options: ExportOptions, *, example: np.ndarray
) -> Verification:
    """Full ``onnx.checker`` check, then ONNX Runtime vs eager PyTorch (fp32 reference) on ``example``.

    Raises:
        I3DError: the checker rejects the graph or ONNX Runtime cannot run it.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise I3DError(f"{path}: ONNX checker failed: {first_line(e)}") from e
    reference_options = replace(options, fp16=False)
    with torch.inference_mode():
        expected = ExportWrapper(recognizer, reference_options)(torch.from_numpy(example)).numpy()
    from ..runtime.onnxruntime_backend import make_session

    session = make_session(path)
    got = session.run(None, {"video": example})[0]
    if got.shape != expected.shape:
        raise I3DError(f"{path}: output shape {got.shape} differs from PyTorch's {expected.shape}")
    max_abs = float(np.abs(got.astype(np.float64) - expected).max())
    return Verification(max_abs, max_abs / float(np.abs(expected).max()), options.tolerance, tuple(got.shape))
