"""mmaction2's I3D family on this machine: each variant's eager and fast engine on one full-size clip
(3 x 32 x 256 x 256), in turns in one process, ms per clip and the ratio, with each engine's relative error against
the tests' functional mmaction2 forward (synthetic weights in mmaction2's key layout).

    python benchmarks/family.py [--repeats 3] [--device cpu] [--precision fp32]

Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from i3d_infer.machine import versions
from i3d_infer.model.checkpoint import build_model, convert_state_dict
from i3d_infer.model.config import (
    i3d_nl_dot_product_r50,
    i3d_nl_embedded_gaussian_r50,
    i3d_nl_gaussian_r50,
    i3d_r50,
    i3d_r50_heavy,
)
from i3d_infer.runtime.torch_backend import TorchBackend
from mmaction_reference import HEAVY, NO_NON_LOCAL, normalize, random_state_dict, reference_forward

VARIANTS = {
    "r50": (i3d_r50, {"non_local": NO_NON_LOCAL}),
    "heavy": (i3d_r50_heavy, {"non_local": NO_NON_LOCAL, **HEAVY}),
    "nl-dot-product": (i3d_nl_dot_product_r50, {}),
    "nl-embedded-gaussian": (i3d_nl_embedded_gaussian_r50, {"mode": "embedded_gaussian"}),
    "nl-gaussian": (i3d_nl_gaussian_r50, {"mode": "gaussian"}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="the fast engine's (eager: fp32)")
    args = parser.parse_args()
    views = torch.randint(0, 256, (1, 3, 32, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for name, (builder, layout) in VARIANTS.items():
        keys = {k: v for k, v in layout.items() if k in ("non_local", "mode", "inflate")}
        state = random_state_dict(seed=0, **keys)
        model = build_model(builder())
        model.network.load_state_dict(convert_state_dict(state, model.network), strict=True)
        with torch.inference_mode():
            reference = reference_forward(normalize(views), state, **layout)
        engines = {
            "eager": TorchBackend(model, args.device, engine="eager"),
            "fast": TorchBackend(model, args.device, engine="fast", precision=args.precision),
        }
        times, errors = {e: [] for e in engines}, {}
        for backend in engines.values():
            backend(views.numpy())  # warm-up
        for _ in range(args.repeats):  # in turns
            for engine, backend in engines.items():
                started = time.perf_counter()
                logits = backend(views.numpy())
                times[engine].append((time.perf_counter() - started) * 1000)
                errors[engine] = float(np.abs(logits - reference.numpy()).max() / reference.abs().max())
        eager, fast = float(np.median(times["eager"])), float(np.median(times["fast"]))
        print(json.dumps({"variant": name, "device": args.device, "precision": args.precision,
                          "eager_ms_per_clip": round(eager, 1), "fast_ms_per_clip": round(fast, 1),
                          "speedup": round(eager / fast, 2), "eager_rel_error": errors["eager"],
                          "fast_rel_error": errors["fast"], "threads": torch.get_num_threads(),
                          "torch": versions()["torch"]}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
