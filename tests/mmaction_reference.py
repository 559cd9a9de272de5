"""An independent statement of the reference for tests: mmaction2 checkpoint keys and a functional forward pass.

Written from spec §1 with mmaction2's key names and torch.nn.functional only, sharing no code with ``i3d_infer.model``,
so that agreement between the two checks our module structure and our rename table at once.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DEPTHS = (3, 4, 6, 3)
INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
NON_LOCAL = ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))
NO_NON_LOCAL = tuple(tuple(0 for _ in stage) for stage in NON_LOCAL)
HEAVY = {"inflate": tuple(tuple(1 for _ in stage) for stage in INFLATE), "conv1_stride_t": 1, "pool1_stride_t": 1}


def key_shapes(
    non_local=NON_LOCAL, num_classes: int = 400, *, mode: str = "dot_product", inflate=INFLATE
) -> dict[str, tuple[int, ...]]:
    """Every key of an mmaction2 I3D R50 checkpoint with its shape (``num_batches_tracked`` is a scalar: ``()``);
    mmcv's gaussian non-local blocks have no theta / phi convs (phi is the max-pool alone)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, cout: int, cin: int, kernel: tuple[int, int, int]) -> None:
        shapes[f"{prefix}.conv.weight"] = (cout, cin, *kernel)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.bn.{name}"] = (cout,)
        shapes[f"{prefix}.bn.num_batches_tracked"] = ()

    conv_bn("backbone.conv1", 64, 3, (5, 7, 7))
    cin = 64
    for i, depth in enumerate(DEPTHS):
        planes = 64 * 2**i
        for j in range(depth):
            p = f"backbone.layer{i + 1}.{j}"
            conv_bn(f"{p}.conv1", planes, cin, (3, 1, 1) if inflate[i][j] else (1, 1, 1))
            conv_bn(f"{p}.conv2", planes, planes, (1, 3, 3))
            conv_bn(f"{p}.conv3", planes * 4, planes, (1, 1, 1))
            if j == 0:
                conv_bn(f"{p}.downsample", planes * 4, cin, (1, 1, 1))
            cin = planes * 4
            if non_local[i][j]:
                nl = f"{p}.non_local_block"
                for name in ("g.0",) if mode == "gaussian" else ("g.0", "theta", "phi.0"):
                    shapes[f"{nl}.{name}.conv.weight"] = (cin // 2, cin, 1, 1, 1)
                    shapes[f"{nl}.{name}.conv.bias"] = (cin // 2,)
                conv_bn(f"{nl}.conv_out", cin, cin // 2, (1, 1, 1))
    shapes["cls_head.fc_cls.weight"] = (num_classes, 2048)
    shapes["cls_head.fc_cls.bias"] = (num_classes,)
    return shapes


def random_state_dict(seed: int = 0, non_local=NON_LOCAL, num_classes: int = 400, **layout) -> dict[str, torch.Tensor]:
    """A synthetic mmaction2 state dict: random values everywhere, BN statistics and non-local output BN included.

    Values come from numpy's seeded generator so the same seed gives the same checkpoint on every torch version.
    Conv weights are scaled by 1/sqrt(fan_in) and BN gains kept near 1 so activations stay finite and informative
    through 50 layers; the non-local output BN gain is smaller (0.1-0.3, still far from the zero of a fresh init)
    and its g/theta/phi weights are scaled down (0.15/sqrt(fan_in)), because the dot-product block is cubic in its
    input and random weights at full scale overflow float32 within five blocks. ``layout``: :func:`key_shapes`'s
    ``mode`` and ``inflate``.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in key_shapes(non_local, num_classes, **layout).items():
        if key.endswith("num_batches_tracked"):
            value = np.array(int(rng.integers(1, 1000)), dtype=np.int64)
        elif key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("running_mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif "conv_out.bn.weight" in key:
            value = rng.uniform(0.1, 0.3, shape)
        elif ".bn.weight" in key:
            value = rng.uniform(0.5, 1.2, shape)
        elif key.endswith("bias"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            gain = 0.15 if "non_local_block" in key and "conv_out" not in key else 1.0
            value = rng.normal(0.0, gain / np.sqrt(fan_in), shape)
        state[key] = torch.from_numpy(np.asarray(value, dtype=np.int64 if key.endswith("tracked") else np.float32))
    return state


def _conv_bn(x, sd, prefix, stride=1, padding=0, relu=True):
    x = F.conv3d(x, sd[f"{prefix}.conv.weight"], stride=stride, padding=padding)
    x = F.batch_norm(
        x, sd[f"{prefix}.bn.running_mean"], sd[f"{prefix}.bn.running_var"], sd[f"{prefix}.bn.weight"],
        sd[f"{prefix}.bn.bias"], training=False, eps=1e-5,
    )  # fmt: skip
    return F.relu(x) if relu else x


def _non_local(x, sd, p, mode="dot_product"):
    """mmcv ``_NonLocalNd.forward`` with ``sub_sample=True, use_scale=False`` (mmaction2's I3D configs), transcribed:
    ``gaussian`` takes theta = x and phi = max_pool(x) (its ``phi`` is the pool layer alone)."""
    n = x.size(0)
    inter = x.size(1) // 2
    g = F.max_pool3d(F.conv3d(x, sd[f"{p}.g.0.conv.weight"], sd[f"{p}.g.0.conv.bias"]), (1, 2, 2))
    g_x = g.view(n, inter, -1).permute(0, 2, 1)
    if mode == "gaussian":
        theta_x = x.view(n, x.size(1), -1).permute(0, 2, 1)
        phi_x = F.max_pool3d(x, (1, 2, 2)).view(n, x.size(1), -1)  # sub_sample: self.phi(x), the pool
    else:
        theta_x = F.conv3d(x, sd[f"{p}.theta.conv.weight"], sd[f"{p}.theta.conv.bias"]).view(n, inter, -1)
        theta_x = theta_x.permute(0, 2, 1)
        phi_x = F.max_pool3d(F.conv3d(x, sd[f"{p}.phi.0.conv.weight"], sd[f"{p}.phi.0.conv.bias"]), (1, 2, 2))
        phi_x = phi_x.view(n, inter, -1)
    pairwise = torch.matmul(theta_x, phi_x)
    if mode == "dot_product":
        pairwise /= pairwise.shape[-1]
    else:  # gaussian, embedded_gaussian (use_scale False): softmax over the last dimension
        pairwise = pairwise.softmax(dim=-1)
    y = torch.matmul(pairwise, g_x)
    y = y.permute(0, 2, 1).contiguous().reshape(n, inter, *x.size()[2:])
    return x + _conv_bn(y, sd, f"{p}.conv_out", relu=False)


def reference_forward(
    x: torch.Tensor,
    sd: dict[str, torch.Tensor],
    non_local=NON_LOCAL,
    *,
    features: bool = False,
    mode: str = "dot_product",
    inflate=INFLATE,
    conv1_stride_t: int = 2,
    pool1_stride_t: int = 2,
) -> torch.Tensor:
    """Logits of mmaction2's I3D on a normalized float ``(n, 3, T, H, W)`` input, straight from checkpoint keys;
    ``features``: stop at mmaction2 ``FeatureHead(spatial_type='avg', temporal_type='avg')``'s output, the
    ``(n, 2048)`` mean of the last stage over H and W, then T (before the head's dropout and fc). ``mode``: the
    non-local blocks' (``non_local_cfg.mode``); ``inflate``, ``conv1_stride_t``, ``pool1_stride_t``: ResNet3d's
    arguments (the heavy network: all inflated, strides 1: :data:`HEAVY`)."""
    x = _conv_bn(x, sd, "backbone.conv1", stride=(conv1_stride_t, 2, 2), padding=(2, 3, 3))
    x = F.max_pool3d(x, (1, 3, 3), stride=(pool1_stride_t, 2, 2), padding=(0, 1, 1))
    for i, depth in enumerate(DEPTHS):
        if i == 1:
            x = F.max_pool3d(x, (2, 1, 1), stride=(2, 1, 1))
        for j in range(depth):
            p = f"backbone.layer{i + 1}.{j}"
            s = 2 if i > 0 and j == 0 else 1
            identity = _conv_bn(x, sd, f"{p}.downsample", stride=(1, s, s), relu=False) if j == 0 else x
            out = _conv_bn(x, sd, f"{p}.conv1", padding=(1, 0, 0) if inflate[i][j] else 0)
            out = _conv_bn(out, sd, f"{p}.conv2", stride=(1, s, s), padding=(0, 1, 1))
            out = _conv_bn(out, sd, f"{p}.conv3", relu=False)
            x = F.relu(out + identity)
            if non_local[i][j]:
                x = _non_local(x, sd, f"{p}.non_local_block", mode)
    if features:
        return x.mean(dim=[-2, -1]).mean(dim=2)  # FeatureHead.forward, 3D backbone: pool1d(pool2d(x))
    x = F.adaptive_avg_pool3d(x, 1).flatten(1)
    return F.linear(x, sd["cls_head.fc_cls.weight"], sd["cls_head.fc_cls.bias"])


MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)


def normalize(views_uint8: torch.Tensor) -> torch.Tensor:
    """Spec §2.7 on a uint8 ``(n, 3, T, H, W)`` batch."""
    return (views_uint8.float() - MEAN) / STD


def mmaction2_test_clip_offsets(num_frames: int, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """mmaction2 1.2.0 ``SampleFrames._get_test_clips`` (``twice_sample=False``), transcribed line for line."""
    ori_clip_len = (clip_len - 1) * frame_interval + 1
    max_offset = max(num_frames - ori_clip_len, 0)
    if num_clips > 1:
        num_segments = num_clips - 1
        offset_between = max_offset / float(num_segments)
        clip_offsets = np.arange(num_clips) * offset_between
        clip_offsets = np.round(clip_offsets).astype(np.int32)
    else:
        clip_offsets = np.array([max_offset // 2])
    return clip_offsets


def mmaction2_test_frame_inds(num_frames: int, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """mmaction2 1.2.0 ``SampleFrames(test_mode=True).transform``'s ``frame_inds`` (``start_index`` 0, 'loop'),
    as ``(num_clips, clip_len)``."""
    clip_offsets = mmaction2_test_clip_offsets(num_frames, clip_len, frame_interval, num_clips)
    frame_inds = clip_offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval
    frame_inds = np.concatenate(frame_inds).reshape((-1, clip_len))
    return np.mod(frame_inds, num_frames)


def mmaction2_0x_test_frame_inds(num_frames: int, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """mmaction2 0.24 ``SampleFrames(test_mode=True)``'s ``frame_inds`` (``_get_test_clips`` without
    ``twice_sample``, ``start_index`` 0, 'loop'), transcribed line for line, as ``(num_clips, clip_len)``."""
    ori_clip_len = clip_len * frame_interval
    avg_interval = (num_frames - ori_clip_len + 1) / float(num_clips)
    if num_frames > ori_clip_len - 1:
        base_offsets = np.arange(num_clips) * avg_interval
        clip_offsets = (base_offsets + avg_interval / 2.0).astype(np.int64)
    else:
        clip_offsets = np.zeros((num_clips,), dtype=np.int64)
    frame_inds = clip_offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval
    frame_inds = np.concatenate(frame_inds).reshape((-1, clip_len))
    return np.mod(frame_inds, num_frames)


def mmaction2_dense_test_frame_inds(num_frames: int, clip_len: int = 32, frame_interval: int = 2) -> np.ndarray:
    """mmaction2's ``DenseSampleFrames(clip_len, frame_interval, num_clips=1, test_mode=True)`` (0.x and 1.2.0 alike:
    ``sample_range`` 64, ``num_sample_positions`` 10) ``frame_inds``, ``(10, clip_len)``, 'loop' out of bounds."""
    sample_range, num_sample_positions, num_clips = 64, 10, 1
    sample_position = max(1, 1 + num_frames - sample_range)
    interval = sample_range // num_clips
    start_list = np.linspace(0, sample_position - 1, num=num_sample_positions, dtype=int)
    base_offsets = np.arange(num_clips) * interval
    clip_offsets = []
    for start_idx in start_list:
        clip_offsets.extend((base_offsets + start_idx) % num_frames)
    clip_offsets = np.array(clip_offsets)
    frame_inds = clip_offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval
    return np.mod(frame_inds, num_frames)


def mmaction2_untrimmed_frame_inds(total_frames: int, clip_len: int, clip_interval: int, frame_interval: int):
    """mmaction2 1.2.0 ``UntrimmedSampleFrames.transform``'s ``frame_inds`` (start_index 0), transcribed line for
    line, as ``(num_clips, clip_len)``; None where it places no clip (a video shorter than the first centre)."""
    clip_centers = np.arange(clip_interval // 2, total_frames, clip_interval)
    frame_inds = (
        clip_centers[:, None]
        + np.arange(-(clip_len // 2 * frame_interval), frame_interval * (clip_len - (clip_len // 2)), frame_interval)[
            None, :
        ]
    )
    frame_inds = np.clip(frame_inds, 0, total_frames - 1)
    return np.concatenate(frame_inds).astype(np.int32).reshape(-1, clip_len) if len(clip_centers) else None


def mmaction2_views(frames: list, inds: np.ndarray, protocol: str, size: int) -> np.ndarray:
    """uint8 views ``(crops * clips, 3, T, S, S)`` of RGB ``frames`` at ``inds`` ``(clips, T)`` as mmaction2's
    ``Resize`` (seed: ``(size, size)``, ``keep_ratio=False``; else short side, mmcv's rounding), ``CenterCrop`` /
    ``ThreeCrop`` and ``FormatShape('NCTHW')`` make them (crop-major), with cv2 and numpy."""
    import cv2

    h, w = frames[0].shape[:2]
    if protocol == "seed":
        new_size = (size, size)
    else:
        scale = size / min(h, w)
        new_size = (int(w * scale + 0.5), int(h * scale + 0.5))  # mmcv rescale_size
    imgs = [cv2.resize(frames[i], new_size, interpolation=cv2.INTER_LINEAR) for i in inds.reshape(-1)]
    new_h, new_w = imgs[0].shape[:2]
    if protocol == "seed":
        offsets = [(0, 0)]
    elif protocol == "centercrop":
        offsets = [((new_w - size) // 2, (new_h - size) // 2)]
    elif new_h == size:  # ThreeCrop: left, right, middle (or top, bottom, middle)
        step = (new_w - size) // 2
        offsets = [(0, 0), (2 * step, 0), (step, 0)]
    else:
        step = (new_h - size) // 2
        offsets = [(0, 0), (0, 2 * step), (0, step)]
    cropped = np.stack([img[y : y + size, x : x + size] for x, y in offsets for img in imgs])
    clips, t = inds.shape
    views = cropped.reshape(len(offsets), clips, t, size, size, 3).transpose(0, 1, 5, 2, 3, 4)
    return np.ascontiguousarray(views.reshape(-1, 3, t, size, size))


def read_all_frames(path) -> list:
    """Every RGB frame ``cv2.VideoCapture`` reads (upright), until its first failure: the reference extraction."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
