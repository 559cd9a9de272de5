"""Predict the action in a video: read views -> backend logits -> fused class probabilities."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .data.decode import DEFAULT_DECODER
from .data.flow import OPENCV, FlowMethod
from .data.pipeline import read_video
from .errors import I3DError
from .evaluate.metrics import fuse_clips
from .model.weights import DEFAULT_WEIGHTS, Weights, choose_weights, read_labels
from .runtime import BackendSpec, make_backend
from .runtime.base import Backend
from .runtime.two_stream import check_streams, flow_stream


@dataclass(frozen=True)
class ClassScore:
    """One class of a top-k list."""

    index: int  # class index
    label: str  # class name
    prob: float  # fused score (a probability with prob fusion)


@dataclass(frozen=True)
class Prediction:
    """What the model says about one video."""

    video: str  # the path it was read from
    num_frames: int  # decodable frames
    frame_indices: np.ndarray  # (num_clips, clip_len) 0-based frame indices
    protocol: str  # view protocol name
    scores: np.ndarray  # (num_classes,) clip-fused scores
    topk: list[ClassScore]  # the k best classes, best first
    clip_scores: np.ndarray | None = None  # (num_clips, num_classes): each clip's own, its crops fused
    decoder: str = ""  # what decoded it; a hand-over says why ("pyav (opencv: no decodable frames)")
    streams: str = "rgb"  # rgb, or rgb+flow (two-stream: softmax of the summed logits, DeepMind's fusion)

    def to_json(self) -> dict:
        """The ``--json`` record of this prediction."""
        return {
            "video": self.video,
            "topk": [{"index": c.index, "label": c.label, "prob": c.prob} for c in self.topk],
            "scores": self.scores.tolist(),
            "num_frames": self.num_frames,
            "frame_indices": self.frame_indices.tolist(),
            "protocol": self.protocol,
            "decoder": self.decoder,
            "streams": self.streams,
        }


class Predictor:
    """A backend plus the preprocessing and labels of its weights; predicts one video at a time. ``flow``: the flow
    stream's backend and weights (two-stream: a whole-video model's logits plus the flow network's, on TV-L1 fields
    computed from the video in the same decoding pass or on a rawframe directory's flow images: ``read_frames``)."""

    def __init__(
        self,
        backend: Backend,
        labels: list[str],
        weights: Weights = DEFAULT_WEIGHTS,
        *,
        fusion: str = "prob",
        decoder: str = DEFAULT_DECODER,
        flow: tuple[Backend, Weights] | None = None,
        flow_method: FlowMethod = OPENCV,
    ) -> None:
        self.backend = backend
        self.labels = labels
        self.weights = weights
        self.fusion = fusion
        self.decoder = decoder
        if flow is not None:
            check_streams(backend, flow[0])
        self.flow, self.flow_method = flow, flow_method

    @classmethod
    def create(
        cls,
        checkpoint: str | os.PathLike | None = None,
        backend: str = "torch",
        model: str | os.PathLike | None = None,
        *,
        device: str = "cpu",
        threads: int | None = None,
        label_map: str | os.PathLike | None = None,
        weights: Weights | None = None,
        engine: str | None = None,
        precision: str = "fp32",
        flow_checkpoint: str | os.PathLike | None = None,
        flow_method: FlowMethod | None = None,
        **kwargs,
    ) -> Predictor:
        """A predictor on ``backend``: torch from a checkpoint path or URL (None: the official checkpoint of
        ``weights``), onnxruntime / openvino from an exported ``model`` file. ``weights`` (architecture and
        preprocessing, sampling included): None takes the published checkpoint's own when ``checkpoint`` is one
        (:func:`i3d_infer.model.weights.choose_weights`), else the default's. ``flow_checkpoint``: a flow-stream
        checkpoint (torch) fused with it (two streams), its flow computed by ``flow_method`` (default: OpenCV's).
        ``kwargs`` go to the constructor."""
        weights = weights or choose_weights(checkpoint)[0]
        spec = BackendSpec(
            backend=backend, checkpoint=checkpoint, model=model, device=device, threads=threads, engine=engine,
            precision=precision,
        )  # fmt: skip
        runner = make_backend(spec, weights)
        labels = read_labels(label_map, weights)
        if len(labels) != runner.num_classes:
            source = label_map or "the bundled label map"
            raise I3DError(f"{source}: has {len(labels)} labels but the model has {runner.num_classes} classes")
        if flow_checkpoint is not None:
            kwargs["flow"] = flow_stream(flow_checkpoint, spec, weights)
            kwargs["flow_method"] = flow_method or OPENCV
        return cls(runner, labels, weights, **kwargs)

    def predict(self, video: str | os.PathLike, protocol: str = "seed", topk: int = 5) -> Prediction:
        """Predict one video file or rawframe directory.

        Raises:
            VideoError: the video cannot be read.
        """
        flow = None if self.flow is None else self.flow_method
        views = read_video(video, protocol, self.weights.preprocessing, decoder=self.decoder, flow=flow)
        logits = self.backend(views.views)  # (V, 3, T, S, S) uint8 -> (V, classes)
        if flow is not None:  # DeepMind's evaluate_sample.py: softmax(rgb logits + flow logits), per view
            logits = logits + self.flow[0](views.flow)  # (V, 2, N - 1, S, S) float32 -> (V, classes)
        scores = fuse_clips(logits, num_views=logits.shape[0], fusion=self.fusion)[0]  # -> (classes,)
        clips = views.frame_indices.shape[0]
        per_clip = logits.reshape(-1, clips, logits.shape[-1]).transpose(
            1, 0, 2
        )  # (crops·clips, C) -> (clips, crops, C)
        clip_scores = fuse_clips(per_clip.reshape(-1, logits.shape[-1]), per_clip.shape[1], self.fusion)  # (clips, C)
        top = self.top(scores, topk)
        return Prediction(
            str(video),
            views.num_frames,
            views.frame_indices,
            views.protocol,
            scores,
            top,
            clip_scores,
            decoder=views.decoder,
            streams="rgb" if self.flow is None else "rgb+flow",
        )

    def top(self, scores: np.ndarray, k: int) -> list[ClassScore]:
        """The ``k`` best classes of ``scores``, best first."""
        return [ClassScore(int(i), self.labels[i], float(scores[i])) for i in np.argsort(scores)[::-1][:k]]
