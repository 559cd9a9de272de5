"""Checkpoints of every family: read safely (``.pth``/``.pt`` pickles without code, TF bundles without TensorFlow),
unwrap, rename to our module names, check shapes, load strictly.

mmaction2's ``.pth`` files fit :class:`I3D` through :data:`RENAME_TABLE`; pytorch-i3d's ``.pt`` files and DeepMind's
TF checkpoints fit :class:`InceptionI3D` (``inception.py`` converts them).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import urllib.parse
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError, first_line
from .config import I3DConfig, InceptionConfig
from .download import cache_dir, download, is_url
from .i3d import I3D, Recognizer
from .inception import InceptionI3D, convert_deepmind, convert_pytorch_i3d
from .tf_bundle import checkpoint_prefix, read_bundle, read_index
from .weights import DEFAULT_WEIGHTS, INCEPTION_WEIGHTS, Weights

# mmaction2 0.x / 1.x name (regex) -> our name. Every key of a checkpoint must match exactly one row.
RENAME_TABLE: tuple[tuple[str, str], ...] = (
    (r"^backbone\.conv1\.conv\.(weight)$", r"stem.conv.\1"),
    (r"^backbone\.conv1\.bn\.(\w+)$", r"stem.bn.\1"),
    (r"^backbone\.(layer\d\.\d+)\.(conv[123]|downsample)\.(conv|bn)\.(\w+)$", r"\1.\2.\3.\4"),
    (r"^backbone\.(layer\d\.\d+)\.non_local_block\.g\.0\.conv\.(weight|bias)$", r"\1.non_local.g.\2"),
    (r"^backbone\.(layer\d\.\d+)\.non_local_block\.theta\.conv\.(weight|bias)$", r"\1.non_local.theta.\2"),
    (r"^backbone\.(layer\d\.\d+)\.non_local_block\.phi\.0\.conv\.(weight|bias)$", r"\1.non_local.phi.\2"),
    (r"^backbone\.(layer\d\.\d+)\.non_local_block\.conv_out\.(conv|bn)\.(\w+)$", r"\1.non_local.out.\2.\3"),
    (r"^cls_head\.fc_cls\.(weight|bias)$", r"fc.\1"),
)
_COMPILED = tuple((re.compile(pattern), replacement) for pattern, replacement in RENAME_TABLE)
KNOWN_PREFIXES = ("module.",)
TF_BUNDLE_NAME = "model.ckpt"  # DeepMind's bundles: <name>/model.ckpt{.index, .data-00000-of-00001}
TF_BUNDLE_FILES = (".index", ".data-00000-of-00001")
SHOW = 5  # keys listed per kind of mismatch in an error message


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` file without running code: returns its state dict (container unwrapped, prefixes stripped).

    Raises:
        CheckpointError: a missing, truncated or non-checkpoint file, or one that needs code execution to load.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first_line(e)})") from e
    return unwrap(obj, source=str(path))


def unwrap(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Take the state dict out of ``{'state_dict': ..., 'meta': ...}`` (or a bare dict) and strip ``module.``."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: not a state dict (expected a dict of tensors, or one under 'state_dict')")
    state = {}
    for key, value in obj.items():
        for prefix in KNOWN_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        state[key] = value
    return state


def rename_key(key: str) -> str | None:
    """Our name for an mmaction2 key, or None when no row of :data:`RENAME_TABLE` matches."""
    for pattern, replacement in _COMPILED:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return None


def convert_state_dict(mm_state: dict[str, torch.Tensor], model: torch.nn.Module, source: str = "checkpoint") -> dict:
    """Convert an mmaction2 state dict to ``model``'s names, checking that the keys and shapes fit exactly.

    ``num_batches_tracked`` counters are training bookkeeping: missing ones are filled with zero.

    Raises:
        CheckpointError: listing the first few missing, unexpected and mis-shaped keys, with counts.
    """
    expected = model.state_dict()
    converted, unexpected, misshaped, seen = {}, [], [], set()
    for key, value in mm_state.items():
        ours = rename_key(key)
        if ours is None or ours not in expected:
            unexpected.append(key)
            continue
        seen.add(ours)
        if tuple(value.shape) != tuple(expected[ours].shape):
            misshaped.append(f"{key} {list(value.shape)} (expected {list(expected[ours].shape)})")
        else:
            converted[ours] = value
    missing = []
    for key, value in expected.items():
        if key in seen:
            continue
        if key.endswith("num_batches_tracked"):
            converted[key] = torch.zeros_like(value)
        else:
            missing.append(key)
    if missing or unexpected or misshaped:
        parts = []
        for label, keys in (("missing (our names)", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                more = f", ... ({len(keys) - SHOW} more)" if len(keys) > SHOW else ""
                parts.append(f"{len(keys)} {label}: " + ", ".join(keys[:SHOW]) + more)
        raise CheckpointError(f"{source}: does not fit the network: " + "; ".join(parts))
    return converted


def build_model(config: I3DConfig | InceptionConfig, weights: Weights = DEFAULT_WEIGHTS) -> Recognizer:
    """A randomly initialised recognizer (normalization + the network ``config`` describes), in eval mode."""
    pre = weights.preprocessing
    network = InceptionI3D(config) if isinstance(config, InceptionConfig) else I3D(config)
    return Recognizer(network, pre.mean, pre.std)


def tf_prefix(path: str | os.PathLike) -> Path | None:
    """The TF bundle prefix a path means (its prefix, ``.index`` / ``.data-*`` file or directory); None for a
    PyTorch file."""
    return None if Path(path).suffix.startswith((".pt", ".pth")) else checkpoint_prefix(path)


def read_any(path: str | os.PathLike) -> tuple[str, dict]:
    """A checkpoint's tensors and its layout: ``("deepmind-tf", {variable: array})`` for a TF bundle, else
    ``("torch", state dict)``."""
    prefix = tf_prefix(path)
    return ("torch", read_checkpoint(path)) if prefix is None else ("deepmind-tf", read_bundle(prefix))


def fit_state(layout: str, tensors: dict, network: torch.nn.Module, *, source: str) -> dict[str, torch.Tensor]:
    """``network``'s state dict from a checkpoint's tensors, strictly (one line naming what does not fit)."""
    if isinstance(network, InceptionI3D):
        if layout == "deepmind-tf":
            return convert_deepmind(tensors, network, source)
        return convert_pytorch_i3d(tensors, network, source)
    if layout == "deepmind-tf":
        raise CheckpointError(f"{source}: a TensorFlow checkpoint does not fit mmaction2's ResNet I3D")
    return convert_state_dict(tensors, network, source=source)


def sniff_weights(path: str | os.PathLike) -> Weights | None:
    """The description of an Inception I3D file not known by name (TATS' ``i3d_pretrained_400.pt``, a fine-tuned
    copy): its stream and class count read from the first conv and the logits; None for anything else (the caller
    keeps the default)."""
    prefix = tf_prefix(path)
    if prefix is not None:
        shapes = {name.split("inception_i3d/")[-1]: entry["shape"] for name, entry in read_index(
            prefix.with_name(prefix.name + ".index")).items()}  # fmt: skip
        first, logits = shapes.get("Conv3d_1a_7x7/conv_3d/w"), shapes.get("Logits/Conv3d_0c_1x1/conv_3d/w")
        channels, classes, layout = (first[3], logits[4], "deepmind-tf") if first and logits else (0, 0, "")
    else:
        state = read_checkpoint(path)
        first, logits = state.get("Conv3d_1a_7x7.conv3d.weight"), state.get("logits.conv3d.weight")
        channels, classes = (first.shape[1], logits.shape[0]) if first is not None and logits is not None else (0, 0)
        layout = "pytorch-i3d"
    stream = {3: "rgb", 2: "flow"}.get(channels)
    if stream is None:
        return None
    like = next(w for w in INCEPTION_WEIGHTS if w.stream == stream and w.layout == layout)
    builder = like.architecture
    labels = like.labels if classes == builder().num_classes else None
    return dataclasses.replace(
        like, name=f"an Inception I3D {stream} checkpoint ({classes} classes)", names=(),
        architecture=lambda: dataclasses.replace(builder(), num_classes=classes), labels=labels, published=(),
    )  # fmt: skip


def random_model(weights: Weights = DEFAULT_WEIGHTS, seed: int = 0) -> Recognizer:
    """The network of ``weights`` with seeded random initial weights: the same in every process (for timing and
    for pipelines shown without the real checkpoint; its predictions mean nothing)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return build_model(weights.architecture(), weights)
    finally:
        torch.random.set_rng_state(state)


def resolve_checkpoint(checkpoint: str | os.PathLike, progress: bool = True) -> Path:
    """A local path for a checkpoint given as a path or an http(s) URL (downloaded once into the cache). A TF bundle's
    URL (``.../rgb_imagenet/model.ckpt``) brings its ``.index`` and data file into ``<cache>/rgb_imagenet/``."""
    if not is_url(checkpoint):
        return Path(checkpoint)
    url = str(checkpoint)
    path = Path(urllib.parse.urlparse(url).path)
    if path.name != TF_BUNDLE_NAME:
        return download(url, progress=progress)
    directory = cache_dir() / path.parent.name
    for suffix in TF_BUNDLE_FILES:
        download(url + suffix, directory, progress=progress)
    return directory / TF_BUNDLE_NAME


def load_model(
    checkpoint: str | os.PathLike | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    config: I3DConfig | None = None,
    *,
    progress: bool = True,
) -> Recognizer:
    """Build the network for ``weights`` (or ``config``) and load a checkpoint into it strictly.

    Args:
        checkpoint: a ``.pth`` path or URL; None means the official checkpoint of ``weights`` (downloaded once).
        weights: which published checkpoint description (architecture, preprocessing) applies.
        config: an architecture overriding ``weights.architecture()``.
        progress: show a progress bar while downloading.
    """
    path = resolve_checkpoint(checkpoint if checkpoint is not None else weights.url, progress=progress)
    model = build_model(config or weights.architecture(), weights)
    layout, tensors = read_any(path)
    model.network.load_state_dict(fit_state(layout, tensors, model.network, source=str(path)), strict=True)
    return model
