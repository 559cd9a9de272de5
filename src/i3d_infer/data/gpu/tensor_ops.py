"""OpenCV's pixel arithmetic in torch integer ops, bit for bit, on any device: the colour conversion and resize of a
GPU decoding path (H.264 decoding itself is exact by the standard, so NVDEC's NV12 planes are FFmpeg's).

``yuv420_to_rgb`` / ``nv12_to_rgb`` is what ``cv2.VideoCapture`` does to a yuv420p frame (FFmpeg's swscale, unscaled
yuv420p -> BGR24 with its defaults: the BT.601 matrix whatever the stream's tags, limited range, each chroma sample
shared by its 2x2 block) with the arithmetic of swscale's x86 SIMD converter (``libswscale/x86/yuv_2_rgb.asm``,
coefficients from ``ff_yuv2rgb_c_init_tables``): ``Y' = ((8 Y - 128) * 9539) >> 16``, ``U' = 8 U - 1024``, ``V' =
8 V - 1024``, then ``R = Y' + (V' * 13075 >> 16)``, ``G = Y' + (U' * -3209 >> 16) + (V' * -6660 >> 16)``, ``B = Y' +
(U' * 16525 >> 16)``, saturated to uint8 (``pmulhw`` is a floor of the high half). The terms are tabulated once
per device (256 luma values, 65536 chroma pairs), so a batch of frames costs two lookups and a saturating add: few
kernel launches from the decode threads. Equal to cv2.VideoCapture on every pixel of the sample videos and of
synthetic even-sized ones (tests); odd sizes were checked only against the even result they crop (PyAV cannot hand
out their planes).

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
BT601_INVERSE = (104597, 132201, 25675, 53279)  # swscale's ff_yuv2rgb_coeffs[SWS_CS_ITU601]: crv, cbu, cgu, cgv


def swscale_coefficients(full_range: bool) -> tuple[int, int, int, int, int, int]:
    """swscale's 13-bit BT.601 converter coefficients as ``ff_yuv2rgb_c_init_tables`` derives them (default contrast
    and saturation), in its integer arithmetic: ``(Y, Y offset, V->R, U->G, V->G, U->B)``. Limited range scales luma
    by 255/219 and offsets it by 16; full range (a ``yuvj*`` pixel format: what swscale takes for full) scales the
    chroma terms by 224/255 instead. Limited: (9539, 128, 13075, -3209, -6660, 16525); full: (8192, 0, 11485, -2819,
    -5850, 14516)."""

    def scaled(c: int) -> int:  # C's int64 (c * 224) / 255: truncated toward zero
        return c * 224 // 255 if c >= 0 else -(-c * 224 // 255)

    def round16(x: int) -> int:  # roundToInt16: (x + 2^15) >> 16, an arithmetic shift
        return (x + (1 << 15)) >> 16

    crv, cbu, cgu, cgv = BT601_INVERSE[0], BT601_INVERSE[1], -BT601_INVERSE[2], -BT601_INVERSE[3]
    cy, oy = 1 << 16, 0
    if full_range:
        crv, cbu, cgu, cgv = (scaled(c) for c in (crv, cbu, cgu, cgv))
    else:
        cy, oy = (cy * 255) // 219, 16 << 16
    return (round16(cy << 13), round16(oy << 3), round16(crv << 13), round16(cgu << 13), round16(cgv << 13),
            round16(cbu << 13))  # fmt: skip


UV_OFFSET = 1024  # 128 << 3, both ranges
Y_COEFF, Y_OFFSET, V_TO_R, U_TO_G, V_TO_G, U_TO_B = swscale_coefficients(full_range=False)  # the fused kernel's


@functools.lru_cache(maxsize=8)
def colour_tables(device: torch.device, full_range: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """swscale's per-sample terms, tabulated once per device and range: the luma term ``(256,)`` and the (R, G, B)
    chroma terms of every chroma pair ``(65536, 3)``, indexed by ``U * 256 + V``, both int16 (every term and sum
    fits)."""
    y_coeff, y_offset, v_to_r, u_to_g, v_to_g, u_to_b = swscale_coefficients(full_range)
    sample = torch.arange(256, dtype=torch.int32)
    luma = (((sample << 3) - y_offset) * y_coeff) >> 16
    chroma = (sample << 3) - UV_OFFSET
    u, v = chroma.repeat_interleave(256), chroma.repeat(256)  # (65536,): entry U * 256 + V
    red = (v * v_to_r) >> 16
    green = ((u * u_to_g) >> 16) + ((v * v_to_g) >> 16)
    blue = (u * u_to_b) >> 16
    terms = torch.stack([red, green, blue], dim=-1)  # (65536, 3)
    return luma.to(torch.int16).to(device), terms.to(torch.int16).to(device)


def yuv420_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, full_range: bool = False) -> torch.Tensor:
    """uint8 planes ``(N, H, W)``, ``(N, H/2, W/2)``, ``(N, H/2, W/2)`` -> uint8 RGB ``(N, H, W, 3)``, as
    ``cv2.VideoCapture`` converts (see the module docstring; ``full_range``: a yuvj420p stream's): the luma term and
    the chroma block's three terms are looked up (swscale's own C converter is table-driven too), summed and
    saturated; nine tensor operations."""
    n, h, w = y.shape
    hc, wc = u.shape[1:]
    luma_table, chroma_table = colour_tables(y.device, full_range)
    luma = luma_table.index_select(0, y.reshape(-1).int()).view(n, h, w, 1)
    pairs = u.int() * 256 + v  # (N, H/2, W/2)
    terms = chroma_table.index_select(0, pairs.view(-1)).view(n, hc, 1, wc, 1, 3)
    if (h, w) == (2 * hc, 2 * wc):  # each chroma term added to its 2x2 luma block without copying it out
        rgb = luma.view(n, hc, 2, wc, 2, 1) + terms  # (N, H/2, 2, W/2, 2, 3)
    else:  # odd sizes: the last chroma row / column covers one luma row / column
        rgb = luma + terms.expand(n, hc, 2, wc, 2, 3).reshape(n, 2 * hc, 2 * wc, 3)[:, :h, :w]
    return rgb.view(n, h, w, 3).clamp_(0, 255).to(torch.uint8)


def nv12_to_rgb(nv12: torch.Tensor, *, full_range: bool = False) -> torch.Tensor:
    """NV12 frames ``(N, 3H/2, W)`` (the luma plane, then U and V interleaved; NVDEC's native output) -> uint8 RGB
    ``(N, H, W, 3)``."""
    h = nv12.shape[1] * 2 // 3
    chroma = nv12[:, h:]  # (N, H/2, W): U0 V0 U1 V1 ...
    return yuv420_to_rgb(nv12[:, :h], chroma[:, :, 0::2], chroma[:, :, 1::2], full_range=full_range)


@functools.lru_cache(maxsize=64)
def resize_taps(dst: int, src: int, clamp: bool, *, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The source indices ``(2 * dst,)`` (first taps, then second taps) and int32 weights ``(2, dst)`` of one axis,
    as OpenCV's resize computes them (float32); cached per size and device (no host-to-device copy per call)."""
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
    taps = torch.cat([first.clamp(0, src - 1), (first + 1).clamp(0, src - 1)]).to(torch.int32)
    return taps.to(device), torch.stack([w0, w1]).to(device)


def resize_linear(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` for uint8 ``(N, H, W, C)`` images."""
    n, h, w, c = images.shape
    if (w, h) == (width, height):
        return images.clone()
    if w == 2 * width and h == 2 * height:  # OpenCV resizes an exact 2x reduction with INTER_AREA
        blocks = images.view(n, height, 2, width, 2, c).to(torch.int32).sum(dim=(2, 4))
        return ((blocks + 2) >> 2).to(torch.uint8)
    columns, a = resize_taps(width, w, True, device=images.device)
    rows, b = resize_taps(height, h, False, device=images.device)
    pairs = images.index_select(2, columns).view(n, h, 2, width, c)  # both taps of every column, uint8
    across = (pairs * a[:, :, None]).sum(dim=2, dtype=torch.int32)  # (N, h, width, C): exact integers
    stacked = across.index_select(1, rows).view(n, 2, height, width, c)  # both source rows of every output row
    stacked >>= 4
    stacked *= b[:, :, None, None]
    stacked >>= 16
    mixed = stacked.sum(dim=1, dtype=torch.int32)  # (N, height, width, C)
    mixed += 2
    mixed >>= 2
    return mixed.clamp_(0, 255).to(torch.uint8)
