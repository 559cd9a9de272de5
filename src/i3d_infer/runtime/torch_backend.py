"""PyTorch backend: the eager recognizer on CPU or CUDA, fp32."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import I3DError
from ..model.i3d import Recognizer
from .base import ENGINES, PRECISION_CHOICES
from .cuda_graphs import CudaGraphs
from .fast_engine import EPILOGUES, FastI3D


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


def check_cuda_stack(log=None) -> str:
    """Log torch and cuDNN versions; warn for combinations known to run fp16/bf16 Conv3d slowly or wrongly."""
    import logging

    log = log or logging.getLogger("i3d_infer").warning
    cudnn = torch.backends.cudnn.version() or 0
    line = f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}, {torch.cuda.get_device_name()}"
    if torch.__version__.startswith("2.9.0") and cudnn >= 90800:
        log(
            f"{line}: torch 2.9.0 with cuDNN >= 9.8 runs fp16/bf16 Conv3d slowly or wrongly (pytorch/pytorch "
            "#163539, #166122); the fast engine avoids Conv3d, the eager engine does not"
        )
    return line


def default_epilogue(device: torch.device) -> str:
    """cuDNN's fused conv + bias (+ residual) + ReLU where cuDNN runs the convolutions (1.7x the separate ops in fp16
    on an H200, benchmarks/RESULTS.md); separate torch ops elsewhere (CPU, ROCm)."""
    fused = device.type == "cuda" and torch.backends.cudnn.is_available() and torch.version.hip is None
    return "cudnn" if fused else "torch"


class TorchBackend:
    """A recognizer run by PyTorch, views ``max_views`` at a time to bound memory.

    ``engine``: ``eager`` (the 3D reference model, fp32/tf32) or ``fast`` (:mod:`fast_engine`: 2D-factored, BN
    folded, any precision, CUDA graphs on a GPU; equal to eager within 1e-5 in fp32, 1.7-2.0x faster on the
    project's 2-core CPU, 10.7x eager fp32 in fp16 on an H200). Default: fast. ``epilogue``: the fast engine's
    (``torch`` or ``cudnn``); default :func:`default_epilogue`.
    """

    name = "torch"

    def __init__(
        self,
        model: Recognizer,
        device: str = "cpu",
        max_views: int | None = None,
        *,
        engine: str | None = None,
        precision: str = "fp32",
        cuda_graphs: bool = True,
        epilogue: str | None = None,
    ) -> None:
        self.torch_device = resolve_device(device)
        self.device = str(self.torch_device)
        cuda = self.torch_device.type == "cuda"
        engines = model.network.engines  # what the network has
        self.engine = engine or ("fast" if "fast" in engines else "eager")
        # the fast engine: the network's own fused copy where it has one (BN folded: Inception, fp16/bf16 under
        # autocast), else FastI3D's 2D-factored ResNet (its own precision)
        fused = self.engine == "fast" and hasattr(model.network, "fused")
        if self.engine not in ENGINES:
            raise I3DError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.engine not in engines:
            raise I3DError(f"{type(model.network).__name__} has no {self.engine} engine; it runs {', '.join(engines)}")
        if precision not in PRECISION_CHOICES:
            raise I3DError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_CHOICES)}")
        if self.engine == "eager" and precision in ("fp16", "bf16") and "fast" in engines:
            raise I3DError("the eager engine is the fp32 reference; use --engine fast for fp16/bf16")
        half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self.autocast = half if fused else None
        if epilogue not in (None, *EPILOGUES):
            raise I3DError(f"unknown epilogue {epilogue!r}; choose one of {', '.join(EPILOGUES)}")
        if epilogue == "cudnn" and not cuda:
            raise I3DError("the cudnn epilogue needs a CUDA device; use torch on the CPU")
        self.precision = precision
        self.label = f"torch-{self.engine}-{precision}"
        self.config = model.network.config
        self.outputs = model.num_outputs
        self.head = model.head  # a feature extractor's classifier weights (Recognizer.features_only), else None
        if cuda:
            check_cuda_stack()
            # "fp32" means fp32: cuDNN would otherwise run convolutions in TF32 by default.
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
            torch.backends.cudnn.benchmark = True
        model = model.to(self.torch_device).eval()
        if fused:  # a new recognizer: the caller's keeps its network
            mean, std = (tuple(v.flatten().tolist()) for v in (model.normalize.mean, model.normalize.std))
            model = Recognizer(model.network.fused(), mean, std).to(self.torch_device)
        elif self.engine == "fast":
            model = FastI3D(model, precision, epilogue or default_epilogue(self.torch_device)).to(self.torch_device)
        graphs = cuda and cuda_graphs and self.engine == "fast" and not fused  # a whole video's length varies
        self.model = CudaGraphs(model) if graphs else model
        # Eager fp32 needs ~0.3 GB of activations per full-size view: two videos per call on a GPU, the fast engine 8.
        self.max_views = max_views or ((80 if self.engine == "fast" else 20) if cuda else 4)

    @property
    def num_classes(self) -> int:
        return self.outputs

    @property
    def input_device(self) -> str | None:
        """The GPU :meth:`forward` takes views on; None on the CPU (views go through :meth:`prepare`)."""
        return self.device if self.torch_device.type == "cuda" else None

    def prepare(self, views: np.ndarray) -> torch.Tensor:
        """uint8 views on the device (through pinned memory on CUDA, without blocking the host)."""
        batch = torch.from_numpy(np.ascontiguousarray(views))
        if self.torch_device.type == "cuda":
            return batch.pin_memory().to(self.torch_device, non_blocking=True)
        return batch

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """float32 ``(n, classes)`` logits on the device, queued on the current stream (not waited for)."""
        outputs = []
        for start in range(0, batch.shape[0], self.max_views):
            chunk = batch[start : start + self.max_views]
            with torch.autocast(self.torch_device.type, dtype=self.autocast, enabled=self.autocast is not None):
                outputs.append(self.model(chunk).float())  # (n, 3, T, H, W) uint8 -> (n, classes)
        return torch.cat(outputs)

    def compute(self, batch: torch.Tensor) -> np.ndarray:
        return self.forward(batch).cpu().numpy()

    def __call__(self, views: np.ndarray) -> np.ndarray:
        return self.compute(self.prepare(views))
