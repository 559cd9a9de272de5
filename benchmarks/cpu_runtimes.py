"""Every CPU runtime against torch eager fp32, on the same input, in one run (the issue's 2.5x target).

Usage: python benchmarks/cpu_runtimes.py [--iters 2] [--json FILE]

Builds the official architecture with a synthetic checkpoint (timing does not depend on the weights), exports it
(dynamic batch, uint8 input), quantizes an int8 OpenVINO copy calibrated on the sample videos, then times batch 1
(one video = 10 clips of 3x32x256x256) on each backend with the same random uint8 input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from i3d_infer.bench import HEADER, bench_inference, to_json
from i3d_infer.export.int8 import quantize_openvino
from i3d_infer.export.onnx import ExportOptions, export_onnx
from i3d_infer.model.checkpoint import load_model
from i3d_infer.prepare.sample_videos import sample_videos
from i3d_infer.runtime import BackendSpec, make_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from mmaction_reference import random_state_dict

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "synthetic.pth"
        torch.save({"state_dict": random_state_dict(0)}, checkpoint)
        onnx_path = export_onnx(load_model(checkpoint), Path(tmp) / "i3d.onnx", ExportOptions(dynamic_batch=True))
        videos = [str(p) for p in sample_videos()]
        report = quantize_openvino(onnx_path, Path(tmp) / "i3d_int8.xml", videos)
        print(
            f"int8 vs fp32 on the {report.videos} sample videos: max rel error {report.max_rel:.3g}, clip top-1 "
            f"agreement {report.clip_top1_agreement:.4f}, video top-1 agreement {report.video_top1_agreement:.4f}"
        )
        runs = [
            ("torch", checkpoint, None),
            ("onnxruntime", None, onnx_path),
            ("openvino", None, onnx_path),
            ("openvino", None, Path(tmp) / "i3d_int8.xml"),
        ]
        print(HEADER + "  vs torch")
        records = []
        for name, ckpt, model in runs:
            backend = make_backend(BackendSpec(name, ckpt, model))
            record = bench_inference(backend, 1, (10, 3, 32, 256, 256), warmup=1, iters=args.iters, progress=False)
            records.append(record)
            label = "openvino-int8" if model and str(model).endswith(".xml") else record.backend
            ratio = records[0].mean_ms / record.mean_ms
            print(record.row().replace(f"{record.backend:<18}", f"{label:<18}", 1) + f"  {ratio:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(records), indent=1))


if __name__ == "__main__":
    main()
