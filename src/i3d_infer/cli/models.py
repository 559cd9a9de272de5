"""``i3d models``: every published checkpoint i3d-infer knows, with what it is, its input and its accuracy."""

from __future__ import annotations

import argparse
import json


def add_commands(commands) -> None:
    models = commands.add_parser(
        "models",
        help="list the known checkpoints (name, family, stream, classes, input, published accuracy, URL)",
        epilog="examples:\n  i3d models\n  i3d models --json | jq .name",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.add_argument("--json", action="store_true", help="one JSON object per checkpoint")
    models.set_defaults(run=run_models)


def model_rows() -> list[dict]:
    """One record per published checkpoint, in :data:`i3d_infer.model.weights.PUBLISHED` order."""
    from ..model.weights import PUBLISHED

    rows = []
    for weights in PUBLISHED:
        pre = weights.preprocessing
        if pre.whole_video:
            sampling = "the whole video"
        else:
            sampling = f"{pre.num_clips}x{pre.clip_len} frames every {pre.frame_interval} ({pre.sampling})"
        rows.append(
            {
                "name": weights.name,
                "family": weights.family,
                "stream": weights.stream,
                "classes": weights.architecture().num_classes,
                "layout": weights.layout,
                "input": f"{sampling}, short side {pre.size}, {pre.protocol} {pre.crop_size}",
                "accuracy": [
                    {"protocol": p, "top1": t1, "top5": t5, "source": src} for p, t1, t5, src in weights.published
                ],
                "url": weights.url,
            }
        )
    return rows


def run_models(args: argparse.Namespace) -> int:
    rows = model_rows()
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    for row in rows:
        accuracy = "; ".join(f"{a['top1']:.1f}/{a['top5']:.1f} ({a['protocol']})" for a in row["accuracy"]) or "-"
        print(f"{row['name']}\n  {row['family']}, {row['stream']}, {row['classes']} classes, {row['layout']} layout")
        print(f"  input: {row['input']}\n  top-1/top-5: {accuracy}\n  {row['url']}")
    return 0
