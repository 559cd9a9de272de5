"""Every output file of two commits on the same inputs, compared byte for byte (a refactoring's proof).

Usage: ``python benchmarks/same_outputs.py BASE [OTHER] [--full]`` (OTHER: the working tree). Each commit is checked
out into a temporary worktree and run with this environment's packages (``PYTHONPATH=<worktree>/src``) over the
bundled sample videos: ``i3d lists``, ``i3d extract`` (rawframes), ``i3d eval`` on videos and on rawframes in two
protocols (one run sharded and merged), ``i3d predict --json`` and ``i3d export``, all with one synthetic checkpoint
in mmaction2's key layout. Without ``--full`` the pipeline is the tests' reduced one (2 clips x 8 frames at 64x64),
so both commits run in a few minutes on two cores. Compared: every file, except ``metrics.json``'s ``timing``
(wall-clock figures), ``extract_report.json``'s speed and ``report.html``'s ``<section id="run">`` (the run's
facts, timing included). Prints one
line per differing file and exits 1 if any differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Runs the i3d CLI, with the reduced pipeline unless I3D_FULL=1 (as tests/eval_launcher.py does).
LAUNCHER = """
import os, sys
from dataclasses import replace
import i3d_infer.model.weights as weights
from i3d_infer.cli import main
if os.environ.get("I3D_FULL") != "1":
    weights.DEFAULT_WEIGHTS = replace(
        weights.DEFAULT_WEIGHTS, preprocessing=weights.Preprocessing(clip_len=8, num_clips=2, size=64)
    )
sys.exit(main(sys.argv[1:]))
"""


def prepare_inputs(inputs: Path) -> None:
    """Sample videos named like the official crawler's files, annotation CSVs, and a synthetic checkpoint."""
    sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
    import torch

    from i3d_infer.demo import DEMO_VIDEOS, write_annotations
    from i3d_infer.prepare.sample_videos import sample_videos
    from mmaction_reference import random_state_dict

    videos = inputs / "videos"
    videos.mkdir(parents=True)
    for path in sample_videos():
        shutil.copyfile(path, videos / f"{DEMO_VIDEOS[path.stem][0]}_000000_000010.mp4")
    write_annotations(inputs / "annotations")
    torch.save({"state_dict": random_state_dict(seed=0), "meta": {}}, inputs / "synthetic.pth")


def commands(inputs: Path, out: Path) -> list[list[str]]:
    """The CLI calls whose outputs are compared (all writing under ``out``)."""
    ckpt = ["--checkpoint", str(inputs / "synthetic.pth")]
    lists = out / "lists"
    videos_list, frames_list = str(lists / "val_list_videos.txt"), str(lists / "val_list_rawframes.txt")
    video = str(next((inputs / "videos").iterdir()))
    evals = [
        ("videos_seed", videos_list, "videos", ["--protocol", "seed"]),
        ("rawframes_threecrop", frames_list, "rawframes", ["--protocol", "threecrop", "--batch-size", "2"]),
        ("videos_centercrop_1x", videos_list, "videos", ["--protocol", "centercrop", "--sampling", "1.x"]),
    ]
    calls = [
        ["extract", str(inputs / "videos"), str(out / "rawframes"), "--workers", "2"],
        ["lists", "--train", str(inputs / "annotations" / "kinetics_train.csv"), "--split",
         str(inputs / "annotations" / "kinetics_val.csv"), "--videos", str(inputs / "videos"), "--rawframes",
         str(out / "rawframes"), "--out", str(lists)],
    ]  # fmt: skip
    for name, listed, root, extra in evals:
        root_dir = str(inputs / "videos") if root == "videos" else str(out / "rawframes")
        base = ["eval", "--list", listed, "--root", root_dir, *ckpt, "--workers", "1", *extra]
        calls.append([*base, "--out-dir", str(out / name), "--out", str(out / f"{name}_result.json")])
    shard = ["eval", "--list", videos_list, "--root", str(inputs / "videos"), *ckpt, "--workers", "0"]
    calls += [
        [*shard, "--shard", "0/2", "--out-dir", str(out / "s0")],
        [*shard, "--shard", "1/2", "--out-dir", str(out / "s1")],
        ["merge", str(out / "s0"), str(out / "s1"), "--out-dir", str(out / "merged")],
        ["export", *ckpt, "--output", str(out / "i3d.onnx"), "--shape", "1", "2", "3", "8", "64", "64",
         "--dynamic-batch", "--verify-video", video],
    ]  # fmt: skip
    return calls


def run_commit(tree: Path, inputs: Path, out: Path, full: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "I3D_FULL": "1" if full else "0"}
    out.mkdir(parents=True)
    predict = [sys.executable, "-c", LAUNCHER, "predict", *map(str, sorted((inputs / "videos").iterdir()))]
    predict += ["--checkpoint", str(inputs / "synthetic.pth"), "--json", "--protocol", "threecrop"]
    with (out / "predict.jsonl").open("w") as f:
        subprocess.run(predict, env=env, stdout=f, stderr=subprocess.DEVNULL, check=True)
    for call in commands(inputs, out):
        done = subprocess.run([sys.executable, "-c", LAUNCHER, *call], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{tree}: i3d {' '.join(call[:1])} failed:\n{done.stderr[-2000:]}")


def normalised(path: Path, root: Path) -> bytes:
    """A file's bytes with what may differ between runs taken out (wall-clock timing, the run section); the run
    directory's own path is replaced so two output trees compare."""
    data = path.read_bytes().replace(str(root).encode(), b"<OUT>")
    if path.name == "metrics.json":
        metrics = json.loads(data)
        metrics.pop("timing", None)
        return json.dumps(metrics, indent=1).encode()
    if path.name == "extract_report.json":  # its speed
        report = json.loads(data)
        report.pop("seconds", None)
        report["summary"] = re.sub(r", [\d.]+ frames/s", "", report.get("summary", ""))
        return json.dumps(report).encode()
    if path.name == "report.html":
        return re.sub(rb'<section id="run">.*?</section>', b"", data, flags=re.S)
    return data


def compare(a: Path, b: Path) -> list[str]:
    names = sorted(
        {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
        | {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    )
    differ = []
    for name in names:
        if not (a / name).is_file() or not (b / name).is_file():
            differ.append(f"{name}: only in {'the first' if (a / name).is_file() else 'the second'}")
        elif normalised(a / name, a) != normalised(b / name, b):
            differ.append(f"{name}: differs")
    print(f"{len(names)} files compared, {len(differ)} differ")
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="commit to compare against")
    parser.add_argument("other", nargs="?", help="commit to compare (default: the working tree)")
    parser.add_argument("--full", action="store_true", help="the full-size pipeline (10 clips x 32 x 256)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="same-outputs-"))
    prepare_inputs(work / "inputs")
    trees = []
    for commit in (args.base, args.other):
        if commit is None:
            trees.append(REPO)
            continue
        tree = work / f"tree-{commit}"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)  # fmt: skip
        trees.append(tree)
    try:
        for k, tree in enumerate(trees):
            run_commit(tree, work / "inputs", work / f"out{k}", args.full)
        differ = compare(work / "out0", work / "out1")
    finally:
        for tree in trees:
            if tree != REPO:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    for line in differ:
        print(line)
    print(f"outputs in {work}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
