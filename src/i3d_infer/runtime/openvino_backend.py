"""OpenVINO backend (CPU): reads the exported ONNX graph directly, fp32 inference precision."""

from __future__ import annotations

import os

import numpy as np

from ..errors import I3DError, first_line
from ..machine import usable_cores
from ..model.weights import DEFAULT_WEIGHTS, Preprocessing
from .onnx_model import OnnxGraphBackend, require


class OpenVINOBackend(OnnxGraphBackend):
    """Runs an exported graph with OpenVINO on the CPU.

    ``hint`` is OpenVINO's performance hint: LATENCY (one request uses every core; best for one batch at a time)
    or THROUGHPUT. Inference precision is pinned to f32 so results match PyTorch (OpenVINO would pick bf16 on CPUs
    that have it).
    """

    name = "openvino"

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        threads: int | None = None,
        *,
        preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing,
        hint: str = "LATENCY",
    ) -> None:
        super().__init__(path, preprocessing)
        if device != "cpu":
            raise I3DError(f"the openvino backend runs on cpu only, got device {device!r}")
        ov = require("openvino", "openvino")
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as e:  # OpenVINO raises RuntimeError subclasses with multi-line text
            raise I3DError(f"{self.path}: OpenVINO cannot read it ({first_line(e)})") from e
        config = {
            "PERFORMANCE_HINT": hint,
            "INFERENCE_NUM_THREADS": threads or usable_cores(),
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        (inp,) = self.compiled.inputs
        shape = [d.get_length() if d.is_static else -1 for d in inp.get_partial_shape()]
        outputs = [name for o in self.compiled.outputs for name in o.get_names()]
        out_shape = [d.get_length() if d.is_static else -1 for d in self.compiled.outputs[0].get_partial_shape()]
        self.check_contract(
            inp.get_any_name(), shape, outputs, input_dtype=inp.get_element_type().to_dtype(), output_shape=out_shape
        )

    def run(self, video: np.ndarray) -> np.ndarray:
        result = self.request.infer({"video": video})
        return np.asarray(result[self.compiled.output(self.output_name)])
