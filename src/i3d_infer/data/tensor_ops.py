"""OpenCV's pixel arithmetic in torch integer ops, bit for bit, on any device: the colour conversion and resize of a
GPU decoding path (H.264 decoding itself is exact by the standard, so NVDEC's NV12 planes are FFmpeg's).

``yuv420_to_rgb`` / ``nv12_to_rgb`` is what ``cv2.VideoCapture`` does to a yuv420p frame (FFmpeg's swscale, unscaled
yuv420p -> BGR24 with its defaults: the BT.601 matrix whatever the stream's tags, limited range, each chroma sample
shared by its 2x2 block) with the arithmetic of swscale's x86 SIMD converter (``libswscale/x86/yuv_2_rgb.asm``,
coefficients from ``ff_yuv2rgb_c_init_tables``): ``Y' = ((8 Y - 128) * 9539) >> 16``, ``U' = 8 U - 1024``, ``V' =
8 V - 1024``, then ``R = Y' + (V' * 13075 >> 16)``, ``G = Y' + (U' * -3209 >> 16) + (V' * -6660 >> 16)``, ``B = Y' +
(U' * 16525 >> 16)``, saturated to uint8 (``pmulhw`` is a floor of the high half). Equal to cv2.VideoCapture on
every pixel of the sample videos and of synthetic even-sized ones (tests); odd sizes were not checked (PyAV
cannot hand out their planes).

``resize_linear`` is ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` on uint8 images as OpenCV computes it
(``modules/imgproc/src/resize.cpp``): per output column ``fx = (dx + 0.5) * scale - 0.5`` in float32, ``sx =
floor(fx)``, clamped to the image with ``fx = 0`` at the borders; weights ``round((1 - fx) * 2048)`` and ``round(fx
* 2048)`` (INTER_RESIZE_COEF_BITS = 11); a horizontal pass in exact integers; rows the same way except that the
vertical weights are not reset at the borders (the source rows are clamped instead); and the vertical pass
rounded as OpenCV's SIMD kernel ``VResizeLinearVec_32s8u`` does it, ``((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16)
+ 2 >> 2`` (its scalar path, ``(b0 * S0 + b1 * S1 + 2^21) >> 22``, differs by one level on ~12% of pixels and is
not what the wheel runs). An exact 2x reduction in both directions is INTER_AREA in OpenCV (``cv::resize``
switches), the rounded mean of each 2x2 block. Tested against cv2 on random images of many sizes
(``tests/test_data_tensor_ops.py``). Not used by the CPU pipeline, whose workers call cv2 itself: it is for frames
that are decoded on the GPU (NVDEC / nvJPEG), which must be resized there exactly as the CPU path does.
"""

from __future__ import annotations

import functools

import torch

COEF_SCALE = 2048  # 1 << INTER_RESIZE_COEF_BITS
# swscale's 13-bit BT.601 limited-range coefficients: roundToInt16(c * 2^13) of ff_yuv2rgb_coeffs[SWS_CS_ITU601]
Y_COEFF, Y_OFFSET, UV_OFFSET = 9539, 128, 1024  # 255/219 scale; 16 << 3; 128 << 3
V_TO_R, U_TO_G, V_TO_G, U_TO_B = 13075, -3209, -6660, 16525


def yuv420_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """uint8 planes ``(N, H, W)``, ``(N, H/2, W/2)``, ``(N, H/2, W/2)`` -> uint8 RGB ``(N, H, W, 3)``, as
    ``cv2.VideoCapture`` converts (see the module docstring)."""
    h, w = y.shape[1:]
    luma = (((y.to(torch.int32) << 3) - Y_OFFSET) * Y_COEFF) >> 16
    u = ((u.to(torch.int32) << 3) - UV_OFFSET).repeat_interleave(2, 1).repeat_interleave(2, 2)[:, :h, :w]
    v = ((v.to(torch.int32) << 3) - UV_OFFSET).repeat_interleave(2, 1).repeat_interleave(2, 2)[:, :h, :w]
    red = luma + ((v * V_TO_R) >> 16)
    green = luma + ((u * U_TO_G) >> 16) + ((v * V_TO_G) >> 16)
    blue = luma + ((u * U_TO_B) >> 16)
    return torch.stack([red, green, blue], dim=-1).clamp(0, 255).to(torch.uint8)


def nv12_to_rgb(nv12: torch.Tensor) -> torch.Tensor:
    """NV12 frames ``(N, 3H/2, W)`` (the luma plane, then U and V interleaved; NVDEC's native output) -> uint8 RGB
    ``(N, H, W, 3)``."""
    h = nv12.shape[1] * 2 // 3
    chroma = nv12[:, h:]  # (N, H/2, W): U0 V0 U1 V1 ...
    return yuv420_to_rgb(nv12[:, :h], chroma[:, :, 0::2], chroma[:, :, 1::2])


@functools.lru_cache(maxsize=64)
def _taps(dst: int, src: int, clamp: bool, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source index pairs and their int weights for one axis, as OpenCV's resize computes them (float32); cached
    per size and device (made once, read-only: no host-to-device copies per call)."""
    scale = src / dst
    f = ((torch.arange(dst, dtype=torch.float64) + 0.5) * scale - 0.5).to(torch.float32)  # (float)((d+0.5)*s-0.5)
    first = torch.floor(f).to(torch.int64)
    frac = f - first.to(torch.float32)
    if clamp:  # columns: at the borders the weight of the outer tap is 0
        low, high = first < 0, first >= src - 1
        frac = torch.where(low | high, torch.zeros_like(frac), frac)
        first = torch.where(low, torch.zeros_like(first), torch.where(high, torch.full_like(first, src - 1), first))
    w0 = torch.round((1 - frac) * COEF_SCALE).to(torch.int32)  # saturate_cast<short>: round half to even
    w1 = torch.round(frac * COEF_SCALE).to(torch.int32)
    i0, i1 = first.clamp(0, src - 1), (first + 1).clamp(0, src - 1)
    return i0.to(device), i1.to(device), w0.to(device), w1.to(device)


def resize_linear(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` for uint8 ``(N, H, W, C)`` images."""
    n, h, w, c = images.shape
    if (w, h) == (width, height):
        return images.clone()
    if w == 2 * width and h == 2 * height:  # OpenCV resizes an exact 2x reduction with INTER_AREA
        blocks = images.view(n, height, 2, width, 2, c).to(torch.int32).sum(dim=(2, 4))
        return ((blocks + 2) >> 2).to(torch.uint8)
    x0, x1, a0, a1 = _taps(width, w, True, images.device)
    y0, y1, b0, b1 = _taps(height, h, False, images.device)
    source = images.to(torch.int32)
    rows = source[:, :, x0] * a0[None, None, :, None] + source[:, :, x1] * a1[None, None, :, None]  # (N, h, width, C)
    top, bottom = rows[:, y0] >> 4, rows[:, y1] >> 4  # (N, height, width, C)
    mixed = ((top * b0[None, :, None, None]) >> 16) + ((bottom * b1[None, :, None, None]) >> 16)
    return ((mixed + 2) >> 2).clamp(0, 255).to(torch.uint8)
