"""NV12 -> RGB -> resize in one Triton kernel: the arithmetic of :mod:`i3d_infer.data.gpu.tensor_ops` (OpenCV's, bit for
bit), fused, so a batch of decoded frames costs one kernel launch and one pass over memory instead of ~20 launches
and ~30 passes over int32 intermediates.

Each program computes a tile of ``BLOCK_H`` x ``BLOCK_W`` output pixels of one frame: the two source rows and two source
columns of every output pixel are converted from the NV12 planes on the fly (swscale's formulas, the same ones the
colour tables hold), mixed horizontally in exact integers, then vertically with OpenCV's SIMD rounding, exactly as
``resize_linear``; an exact 2x reduction is INTER_AREA (the rounded mean of each 2x2 block) and the same size is a
plain conversion, as there. Tested against the torch ops on CPU through Triton's interpreter
(``TRITON_INTERPRET=1``), which runs this very kernel with numpy.

Triton comes with torch's CUDA wheels; where it is missing (or on the CPU) the NVDEC reader uses the torch ops.
"""

from __future__ import annotations

import functools
import logging
import os
import threading

import torch

try:  # optional: torch's CUDA wheels bring it
    import triton
    import triton.language as tl
except ImportError:
    triton = None

from ...errors import first_line
from .tensor_ops import U_TO_B, U_TO_G, UV_OFFSET, V_TO_G, V_TO_R, Y_COEFF, Y_OFFSET, resize_taps

BLOCK_H, BLOCK_W = 8, 128  # output rows x columns per program
COPY, LINEAR, AREA = 0, 1, 2  # how the converted frame is resized


def available(device: torch.device) -> bool:
    """Whether the fused kernel runs on ``device`` (see :func:`unavailable`; on a CUDA device where it does not,
    the reason is logged once)."""
    return unavailable(device) is None


@functools.lru_cache(maxsize=8)
def unavailable(device: torch.device) -> str | None:
    """Why the fused kernel is not used on ``device``, or None: Triton missing, not a CUDA device (Triton's CPU
    interpreter must be asked for with ``TRITON_INTERPRET=1`` before this module is imported), or a first launch
    on a small frame that failed (Triton builds its launcher with the system's C compiler) or differed from the
    torch ops. Checked once per device."""
    reason = _check(device)
    if reason is not None and device.type == "cuda":
        logging.getLogger("i3d_infer").warning("nvdec: no fused NV12 kernel (%s): torch ops instead", reason)
    return reason


def _check(device: torch.device) -> str | None:
    if triton is None:
        return "Triton is not installed"
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return f"not a CUDA device ({device})"
    from .tensor_ops import nv12_to_rgb, resize_linear

    generator = torch.Generator().manual_seed(0)
    nv12 = torch.randint(0, 256, (2, 36, 40), dtype=torch.uint8, generator=generator).to(device)
    try:
        fused = nv12_resize(nv12, torch.empty((2, 11, 17, 3), dtype=torch.uint8, device=device))
    except Exception as e:  # Triton's compile and launch errors have no common base
        return f"its first launch failed ({first_line(e)})"
    if not torch.equal(fused, resize_linear(nv12_to_rgb(nv12), 17, 11)):
        return "it differs from the torch ops on this device"
    return None


def nv12_resize(nv12: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """NV12 frames ``(K, 3H/2, W)`` -> RGB resized to ``out``'s ``(K, height, width, 3)`` (uint8, written in place),
    as ``resize_linear(nv12_to_rgb(nv12), width, height)`` computes it."""
    k, h, w = nv12.shape[0], nv12.shape[1] * 2 // 3, nv12.shape[2]
    height, width = out.shape[1:3]
    if out.shape[0] != k or out.shape[3] != 3 or out.stride(3) != 1 or out.stride(2) != 3:
        raise ValueError(f"out must be ({k}, height, width, 3) with contiguous pixels, not {tuple(out.shape)}")
    if nv12.stride(2) != 1:
        nv12 = nv12.contiguous()
    mode = COPY if (w, h) == (width, height) else AREA if (w, h) == (2 * width, 2 * height) else LINEAR
    if mode == LINEAR:
        columns, column_weights = resize_taps(width, w, True, device=nv12.device)
        rows, row_weights = resize_taps(height, h, False, device=nv12.device)
    else:  # unused by the kernel; any int32 tensors on the device will do
        columns = column_weights = rows = row_weights = _placeholder(nv12.device)
    tiles = (height + BLOCK_H - 1) // BLOCK_H
    grid = (k * tiles, (width + BLOCK_W - 1) // BLOCK_W)
    with _LAUNCH:  # Triton compiles a kernel variant on its first launch: one thread at a time
        _nv12_resize_kernel[grid](
            nv12,
            out,
            columns,
            column_weights,
            rows,
            row_weights,
            h,
            nv12.stride(0),
            nv12.stride(1),
            out.stride(0),
            out.stride(1),
            width,
            height,
            tiles,
            MODE=mode,
            BLOCK_H=BLOCK_H,
            BLOCK_W=BLOCK_W,
        )
    return out


_LAUNCH = threading.Lock()


@functools.lru_cache(maxsize=8)
def _placeholder(device: torch.device) -> torch.Tensor:
    return torch.zeros(2, dtype=torch.int32, device=device)


if triton is not None:
    # swscale's constants (tensor_ops), as the compile-time values Triton kernels may read
    _Y_COEFF, _Y_OFFSET, _UV_OFFSET = tl.constexpr(Y_COEFF), tl.constexpr(Y_OFFSET), tl.constexpr(UV_OFFSET)
    _V_TO_R, _U_TO_G, _V_TO_G, _U_TO_B = (tl.constexpr(c) for c in (V_TO_R, U_TO_G, V_TO_G, U_TO_B))

    @triton.jit
    def _pixel(base, r, x, h, row_stride, mask):
        """(R, G, B) int32 of source pixel (row ``r``, columns ``x``): swscale's BT.601 limited-range conversion."""
        luma = tl.load(base + r * row_stride + x, mask=mask, other=0).to(tl.int32)
        chroma = base + (h + r // 2) * row_stride + (x // 2) * 2  # U0 V0 U1 V1 ... after the luma plane
        u = tl.load(chroma, mask=mask, other=0).to(tl.int32) * 8 - _UV_OFFSET
        v = tl.load(chroma + 1, mask=mask, other=0).to(tl.int32) * 8 - _UV_OFFSET
        luma = ((luma * 8 - _Y_OFFSET) * _Y_COEFF) >> 16
        red = luma + ((v * _V_TO_R) >> 16)
        green = luma + ((u * _U_TO_G) >> 16) + ((v * _V_TO_G) >> 16)
        blue = luma + ((u * _U_TO_B) >> 16)
        return (
            tl.minimum(tl.maximum(red, 0), 255),
            tl.minimum(tl.maximum(green, 0), 255),
            tl.minimum(tl.maximum(blue, 0), 255),
        )

    @triton.jit
    def _across(base, r, x0, x1, a0, a1, h, row_stride, mask):
        """OpenCV's horizontal pass on source row ``r``: exact integer sums of the two taps, per channel."""
        r0, g0, b0 = _pixel(base, r, x0, h, row_stride, mask)
        r1, g1, b1 = _pixel(base, r, x1, h, row_stride, mask)
        return r0 * a0 + r1 * a1, g0 * a0 + g1 * a1, b0 * a0 + b1 * a1

    @triton.jit
    def _down(top, bottom, w0, w1):
        """OpenCV's vertical pass (``VResizeLinearVec_32s8u``'s rounding), saturated."""
        mixed = (((top >> 4) * w0) >> 16) + (((bottom >> 4) * w1) >> 16)
        return tl.minimum(tl.maximum((mixed + 2) >> 2, 0), 255)

    # sizes and strides are not specialised on (Triton would compile a variant per divisibility pattern, i.e. for
    # many video sizes): one compiled kernel per MODE
    @triton.jit(do_not_specialize=["h", "src_frame", "src_row", "dst_frame", "dst_row", "width", "height", "tiles"])
    def _nv12_resize_kernel(
        src,
        dst,
        columns,
        column_weights,
        rows,
        row_weights,
        h,
        src_frame,
        src_row,
        dst_frame,
        dst_row,
        width,
        height,
        tiles,
        MODE: tl.constexpr,
        BLOCK_H: tl.constexpr,
        BLOCK_W: tl.constexpr,
    ):
        frame = tl.program_id(0) // tiles
        oy = (tl.program_id(0) % tiles) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]  # (BLOCK_H, 1)
        ox = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]  # (1, BLOCK_W)
        in_rows, in_columns = oy < height, ox < width
        mask = in_rows & in_columns  # (BLOCK_H, BLOCK_W)
        base = src + frame.to(tl.int64) * src_frame
        if MODE == 0:  # same size: the conversion only
            red, green, blue = _pixel(base, oy, ox, h, src_row, mask)
        elif MODE == 1:  # INTER_LINEAR
            x0 = tl.load(columns + ox, mask=in_columns, other=0)
            x1 = tl.load(columns + width + ox, mask=in_columns, other=0)
            a0 = tl.load(column_weights + ox, mask=in_columns, other=0)
            a1 = tl.load(column_weights + width + ox, mask=in_columns, other=0)
            y0 = tl.load(rows + oy, mask=in_rows, other=0)
            y1 = tl.load(rows + height + oy, mask=in_rows, other=0)
            w0 = tl.load(row_weights + oy, mask=in_rows, other=0)
            w1 = tl.load(row_weights + height + oy, mask=in_rows, other=0)
            r_top, g_top, b_top = _across(base, y0, x0, x1, a0, a1, h, src_row, mask)
            r_bottom, g_bottom, b_bottom = _across(base, y1, x0, x1, a0, a1, h, src_row, mask)
            red = _down(r_top, r_bottom, w0, w1)
            green = _down(g_top, g_bottom, w0, w1)
            blue = _down(b_top, b_bottom, w0, w1)
        else:  # an exact 2x reduction: INTER_AREA, the rounded mean of each 2x2 block
            r00, g00, b00 = _pixel(base, 2 * oy, 2 * ox, h, src_row, mask)
            r01, g01, b01 = _pixel(base, 2 * oy, 2 * ox + 1, h, src_row, mask)
            r10, g10, b10 = _pixel(base, 2 * oy + 1, 2 * ox, h, src_row, mask)
            r11, g11, b11 = _pixel(base, 2 * oy + 1, 2 * ox + 1, h, src_row, mask)
            red = (r00 + r01 + r10 + r11 + 2) >> 2
            green = (g00 + g01 + g10 + g11 + 2) >> 2
            blue = (b00 + b01 + b10 + b11 + 2) >> 2
        target = dst + frame.to(tl.int64) * dst_frame + oy * dst_row + ox * 3  # (BLOCK_H, BLOCK_W)
        tl.store(target, red.to(tl.uint8), mask=mask)
        tl.store(target + 1, green.to(tl.uint8), mask=mask)
        tl.store(target + 2, blue.to(tl.uint8), mask=mask)
