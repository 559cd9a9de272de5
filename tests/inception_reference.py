"""The tests' own Inception I3D: synthetic checkpoints in DeepMind's and pytorch-i3d's layouts, a TF bundle writer,
and a functional forward transcribed from DeepMind's ``i3d.py`` (not from our module).

The forward works on DeepMind's variables by name (``Conv3d_1a_7x7/conv_3d/w`` (t, h, w, in, out), ``batch_norm/
{beta, moving_mean, moving_variance}``) in float64. TF's SAME padding is built a second way: a stride-1 op over the
input padded by ``kernel - 1`` on both sides, sampled from ``kernel - 1 - front`` every ``stride`` cells, where
``front = total // 2`` of TF's documented ``total = max((ceil(n / s) - 1) * s + k - n, 0)``. Max-pools pad with -inf
(TF ignores padded cells).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

LAYOUTS = Path(__file__).parent / "data" / "inception_layouts"
DEEPMIND_INDEX = Path(__file__).parent / "data" / "deepmind_index"
# endpoint -> (b0, b1a, b1b, b2a, b2b, b3b), copied from kinetics-i3d i3d.py's Unit3D output_channels
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def layout(name: str) -> dict[str, tuple[int, ...]]:
    """name -> shape of a released checkpoint (``variables_rgb_imagenet``) or pytorch-i3d state dict
    (``keys_pytorch_rgb_imagenet``), as ``../shared/reference/inception_layouts`` lists them."""
    out = {}
    for line in (LAYOUTS / f"{name}.txt").read_text().splitlines():
        key, shape, *_ = line.split("\t")
        out[key] = tuple(int(v) for v in shape.strip("[]").split(", ") if v)
    return out


def random_variables(name: str = "variables_rgb_imagenet", *, seed: int = 0, classes: int | None = None) -> dict:
    """Random float32 values for every variable of a released checkpoint's layout, scaled so activations stay
    O(1) (He-scaled kernels, BN variances in [0.5, 1.5]); ``classes`` resizes the logits."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in layout(name).items():
        if classes is not None and "Logits" in key:
            shape = (*shape[:-1], classes)
        if key.endswith("/w") or key.endswith("w/Momentum"):
            fan_in = math.prod(shape[:-1])
            value = rng.normal(0, math.sqrt(2 / fan_in), shape)
        elif "moving_variance" in key:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0, 0.1, shape)
        out[key] = value.astype(np.float32)
    return out


def pytorch_i3d_state(variables: dict, prefix: str) -> dict[str, torch.Tensor]:
    """pytorch-i3d's state dict of the same weights (its converter's names: ``b0``..``b3b``, ``bn.weight`` = 1)."""
    names = {"Branch_0/Conv3d_0a_1x1": "b0", "Branch_1/Conv3d_0a_1x1": "b1a", "Branch_1/Conv3d_0b_3x3": "b1b",
             "Branch_2/Conv3d_0a_1x1": "b2a", "Branch_2/Conv3d_0b_3x3": "b2b", "Branch_2/Conv3d_0a_3x3": "b2b",
             "Branch_3/Conv3d_0b_1x1": "b3b"}  # fmt: skip
    state = {}
    for key, value in variables.items():
        scope, kind = key[len(prefix) :].rsplit("/", 2)[0], key.rsplit("/", 2)[1:]
        if scope.startswith("Logits"):
            ours = "logits"
        elif scope.startswith("Mixed"):
            block, branch = scope.split("/", 1)
            ours = f"{block}.{names[branch]}"
        else:
            ours = scope
        tensor = torch.from_numpy(value.reshape(-1) if value.ndim != 5 else value.transpose(4, 3, 0, 1, 2).copy())
        if kind == ["conv_3d", "w"]:
            state[f"{ours}.conv3d.weight"] = tensor
        elif kind == ["conv_3d", "b"]:
            state[f"{ours}.conv3d.bias"] = tensor
        else:
            bn = {"beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}[kind[1]]
            state[f"{ours}.bn.{bn}"] = tensor
            state[f"{ours}.bn.weight"] = torch.ones_like(tensor)
    return state


# ---- the TF tensor bundle: a LevelDB table of BundleEntryProto values + raw little-endian data ----


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block with every entry a restart point (no shared key prefixes)."""
    body, restarts = bytearray(), []
    for key, value in entries:
        restarts.append(len(body))
        body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    for offset in restarts:
        body += struct.pack("<I", offset)
    return bytes(body + struct.pack("<I", len(restarts)))


def _masked_crc32c(data: bytes) -> int:
    """LevelDB's masked CRC-32C (Castagnoli), which TensorFlow's reader checks (slow: for the cross-check only)."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_bundle(prefix: Path, variables: dict[str, np.ndarray], *, checksums: bool = False) -> Path:
    """Write ``prefix.index`` and ``prefix.data-00000-of-00001`` as TF's BundleWriter lays them out (float32).
    Checksums are zero unless ``checksums`` (TensorFlow's reader checks them; ours does not; needs google-crc32c)."""
    crc = _masked_crc32c if checksums else (lambda data: 0)
    data, entries = bytearray(), [(b"", _field(1, 1) + _field(3, 1))]  # header: num_shards 1, version 1
    for name in sorted(variables):
        raw = np.ascontiguousarray(variables[name], dtype="<f4").tobytes()
        shape = b"".join(_field(2, _field(1, d)) for d in variables[name].shape)
        entry = _field(1, 1) + _field(2, shape) + _field(4, len(data)) + _field(5, len(raw))
        entry += _varint(6 << 3 | 5) + struct.pack("<I", crc(raw))  # crc32c, fixed32
        entries.append((name.encode(), entry))
        data += raw
    table = bytearray()

    def put(block: bytes) -> bytes:
        handle = _varint(len(table)) + _varint(len(block))
        table.extend(block + b"\0" + struct.pack("<I", crc(block + b"\0")))  # no compression
        return handle

    data_handle = put(_block(entries))
    meta_handle = put(_block([]))
    index_handle = put(_block([(entries[-1][0] + b"\xff", data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_name(prefix.name + ".index").write_bytes(bytes(table + footer))
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))
    return prefix


# ---- DeepMind's forward, functionally ----


def _same(x: torch.Tensor, kernel, stride, pad_value: float, op) -> torch.Tensor:
    """``op`` (a stride-1 conv or pool over the given kernel) with TF SAME padding and ``stride``."""
    full = F.pad(x, [k - 1 for k in reversed(kernel) for _ in (0, 1)], value=pad_value)
    y = op(full)
    for axis, (k, s) in enumerate(zip(kernel, stride, strict=True)):
        n = x.shape[2 + axis]
        out = math.ceil(n / s)
        front = max((out - 1) * s + k - n, 0) // 2
        start = k - 1 - front
        y = y.narrow(2 + axis, start, (out - 1) * s + 1)[(slice(None),) * (2 + axis) + (slice(None, None, s),)]
    return y


def _unit(x, v, scope, stride=(1, 1, 1)):
    w = torch.from_numpy(v[f"{scope}/conv_3d/w"]).double().permute(4, 3, 0, 1, 2)  # (t,h,w,in,out) -> (out,in,t,h,w)
    y = _same(x, tuple(w.shape[2:]), stride, 0.0, lambda z: F.conv3d(z, w))
    mean, var, beta = (torch.from_numpy(v[f"{scope}/batch_norm/{n}"]).double().reshape(1, -1, 1, 1, 1)
                       for n in ("moving_mean", "moving_variance", "beta"))  # fmt: skip
    return torch.relu((y - mean) / torch.sqrt(var + 1e-3) + beta)


def _pool(x, kernel, stride):
    return _same(x, kernel, stride, -math.inf, lambda z: F.max_pool3d(z, kernel, 1))


def reference_forward(variables: dict, video: np.ndarray, prefix: str = "RGB/inception_i3d/") -> dict[str, np.ndarray]:
    """DeepMind's ``InceptionI3d`` on ``video`` (TF layout ``(n, T, H, W, C)``, values in [-1, 1]), float64:
    ``logits`` (mean over time), ``logits_per_time``, ``features`` (AvgPool output averaged over time)."""
    v = {k[len(prefix) :]: a for k, a in variables.items() if k.startswith(prefix) and "Momentum" not in k}
    x = torch.from_numpy(video).double().permute(0, 4, 1, 2, 3)  # (n, T, H, W, C) -> (n, C, T, H, W)
    x = _unit(x, v, "Conv3d_1a_7x7", (2, 2, 2))
    x = _pool(x, (1, 3, 3), (1, 2, 2))
    x = _unit(x, v, "Conv3d_2b_1x1")
    x = _unit(x, v, "Conv3d_2c_3x3")
    x = _pool(x, (1, 3, 3), (1, 2, 2))
    for block in MIXED:
        if block == "Mixed_4b":
            x = _pool(x, (3, 3, 3), (2, 2, 2))
        if block == "Mixed_5b":
            x = _pool(x, (2, 2, 2), (2, 2, 2))
        second = "Conv3d_0a_3x3" if block == "Mixed_5b" else "Conv3d_0b_3x3"  # the released files' name
        b0 = _unit(x, v, f"{block}/Branch_0/Conv3d_0a_1x1")
        b1 = _unit(_unit(x, v, f"{block}/Branch_1/Conv3d_0a_1x1"), v, f"{block}/Branch_1/Conv3d_0b_3x3")
        b2 = _unit(_unit(x, v, f"{block}/Branch_2/Conv3d_0a_1x1"), v, f"{block}/Branch_2/{second}")
        b3 = _unit(_pool(x, (3, 3, 3), (1, 1, 1)), v, f"{block}/Branch_3/Conv3d_0b_1x1")
        x = torch.cat([b0, b1, b2, b3], dim=1)
    pooled = F.avg_pool3d(x, (2, 7, 7), stride=1)  # VALID
    w = torch.from_numpy(v["Logits/Conv3d_0c_1x1/conv_3d/w"]).double().permute(4, 3, 0, 1, 2)
    b = torch.from_numpy(v["Logits/Conv3d_0c_1x1/conv_3d/b"]).double().reshape(-1)
    logits = F.conv3d(pooled, w, b)[:, :, :, 0, 0].transpose(1, 2)  # spatial squeeze -> (n, T', classes)
    return {
        "logits": logits.mean(dim=1).numpy(),
        "logits_per_time": logits.numpy(),
        "features": pooled[:, :, :, 0, 0].mean(dim=2).numpy(),
    }
