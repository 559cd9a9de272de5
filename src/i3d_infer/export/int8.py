"""INT8 post-training quantization of an exported graph for OpenVINO (NNCF), always measured against fp32.

This CPU has AVX-512 VNNI (int8 dot products) but no bf16, so int8 is the lower precision that pays here. The
result is an OpenVINO IR (``.xml`` + ``.bin``) that ``--backend openvino --model FILE.xml`` runs; beside it a
``.json`` records the error measured against the fp32 graph on real videos.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import I3DError
from ..model.weights import DEFAULT_WEIGHTS, Preprocessing
from ..runtime.onnx_model import require
from .onnx import read_inputs


@dataclass(frozen=True)
class QuantizationReport:
    """int8 against fp32 on the same inputs."""

    videos: int  # videos compared
    max_rel: float  # max |int8 - fp32| / max |fp32| over all clip logits
    clip_top1_agreement: float  # fraction of clips whose argmax agrees
    video_top1_agreement: float  # fraction of videos whose prob-fused argmax agrees
    calibration_videos: int


def quantize_openvino(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike,
    calibration: list[str | os.PathLike],
    *,
    check: list[str | os.PathLike] | None = None,
    preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing,
    threads: int | None = None,
) -> QuantizationReport:
    """Quantize ``onnx_path`` (an ``i3d export`` graph with uint8 input) to int8 with ``calibration`` videos.

    Writes ``output`` (``.xml``, with its ``.bin``) and ``output`` with ``.json``: the error against fp32 on ``check``
    videos (default: the calibration videos).
    """
    ov = require("openvino", "int8")
    nncf = require("nncf", "int8")
    from ..runtime.openvino_backend import OpenVINOBackend

    output = Path(output)
    if output.suffix != ".xml":
        raise I3DError(f"{output}: the int8 model is an OpenVINO IR; name it *.xml")
    fp32 = OpenVINOBackend(onnx_path, threads=threads, preprocessing=preprocessing)
    if fp32.input_dtype != np.uint8 or fp32.batch not in (None, 1):
        raise I3DError(f"{onnx_path}: quantize a graph exported with --input uint8 and batch 1 or --dynamic-batch")
    shape = (1, fp32.views_per_video, *fp32.view_shape)
    samples = read_inputs(calibration, shape, preprocessing)
    model = ov.Core().read_model(str(onnx_path))
    quantized = nncf.quantize(
        model, nncf.Dataset(samples), subset_size=len(samples), preset=nncf.QuantizationPreset.MIXED
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(output))
    int8 = OpenVINOBackend(output, threads=threads, preprocessing=preprocessing)
    inputs = samples if check is None else read_inputs(check, shape, preprocessing)
    report = compare(fp32, int8, inputs, calibration_videos=len(samples))
    output.with_suffix(".json").write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")
    return report


def compare(reference, candidate, inputs: list[np.ndarray], *, calibration_videos: int) -> QuantizationReport:
    """Clip logits and fused top-1 of ``candidate`` against ``reference`` backends on the same inputs."""
    from ..evaluate.metrics import fuse_clips

    max_abs = max_ref = 0.0
    clips = clip_hits = video_hits = 0
    for video in inputs:
        views = video[0]  # (V, 3, T, H, W)
        a, b = reference(views), candidate(views)
        max_abs, max_ref = max(max_abs, float(np.abs(b - a).max())), max(max_ref, float(np.abs(a).max()))
        clips += len(a)
        clip_hits += int(np.sum(a.argmax(1) == b.argmax(1)))
        video_hits += int(fuse_clips(a, len(a)).argmax() == fuse_clips(b, len(b)).argmax())
    return QuantizationReport(
        len(inputs), max_abs / max_ref, clip_hits / clips, video_hits / len(inputs), calibration_videos
    )
