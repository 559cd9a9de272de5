"""ONNX Runtime backend: CPU execution provider (CUDA when onnxruntime-gpu is installed and asked for)."""

from __future__ import annotations

import os

import numpy as np

from ..errors import I3DError, first_line
from ..machine import usable_cores
from ..model.weights import DEFAULT_WEIGHTS, Preprocessing
from .onnx_model import OnnxGraphBackend, require

ORT_TYPES = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(float16)": np.float16}


def make_session(path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
    """An ONNX Runtime session with all graph optimizations and ``threads`` intra-op threads (default all cores).

    Raises:
        I3DError: the file is not a loadable ONNX model, or CUDA was asked for and is not available.
    """
    ort = require("onnxruntime", "onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or usable_cores()
    options.log_severity_level = 3  # errors only
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise I3DError("device cuda needs onnxruntime-gpu (pip install onnxruntime-gpu)")
        index = int(device.split(":")[1]) if ":" in device else 0
        providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for unreadable files
        raise I3DError(f"{path}: ONNX Runtime cannot load it ({first_line(e)})") from e


class OnnxRuntimeBackend(OnnxGraphBackend):
    """Runs an exported graph with ONNX Runtime."""

    name = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        threads: int | None = None,
        *,
        preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing,
    ) -> None:
        super().__init__(path, preprocessing)
        self.session = make_session(self.path, device, threads)
        self.device = device
        (inp,) = self.session.get_inputs()
        outputs = self.session.get_outputs()
        dtype = ORT_TYPES.get(inp.type, np.float32)
        self.check_contract(
            inp.name, list(inp.shape), [o.name for o in outputs], input_dtype=dtype, output_shape=list(outputs[0].shape)
        )

    def run(self, video: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {"video": video})[0]
