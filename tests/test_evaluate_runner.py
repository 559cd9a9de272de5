"""``i3d eval`` and ``i3d merge``: equals predict, resumable bit for bit, shardable, bad videos accounted for."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from eval_launcher import wait_for
from i3d_infer import Predictor
from i3d_infer.cli import main
from i3d_infer.errors import I3DError
from i3d_infer.evaluate.outputs import accuracy, merge_runs
from i3d_infer.evaluate.results import Counts
from i3d_infer.evaluate.runner import EvalConfig, RunOptions, batches_of, evaluate
from i3d_infer.model.weights import read_labels
from reduced import SMALL
from videos import write_video, write_video_without_frames

LAUNCHER = [sys.executable, str(Path(__file__).parent / "eval_launcher.py")]
FILES = [
    "result.json",
    "metrics.json",
    "predictions.jsonl",
    "per_class.csv",
    "confusion_matrix.png",
    "per_class_accuracy.png",
    "confidence.png",
    "report.html",
    "results.jsonl",
    "config.json",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, sample_videos):
    """Real sample videos and synthetic ones (5 frames, an odd size, fewer frames than a clip span)."""
    root = tmp_path_factory.mktemp("eval")
    videos = root / "videos"
    videos.mkdir()
    for name, path in sample_videos.items():
        (videos / f"{name}.mp4").symlink_to(path)
    write_video(videos / "five_frames.mp4", list(range(5)))
    write_video(videos / "odd_97x61.mp4", list(range(30)), width=97, height=61)
    write_video(videos / "short_40.mp4", list(range(40)), width=80, height=120)
    lines = [
        "bigbuckbunny.mp4 3",
        "bikes.mp4 7",
        "carphone_pristine.mp4 11",
        "five_frames.mp4 7",
        "odd_97x61.mp4 3",
        "short_40.mp4 0",
    ]
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    long = lines * 2
    (root / "long.txt").write_text("\n".join(long) + "\n")
    return root


def config_for(dataset: Path, list_name: str = "list.txt", **kwargs) -> EvalConfig:
    return EvalConfig(list_file=str(dataset / list_name), root=str(dataset / "videos"), **kwargs)


QUIET = RunOptions(workers=2, progress=False)


def run(dataset, out, checkpoint, list_name="list.txt", options=QUIET, **kw):
    return evaluate(config_for(dataset, list_name, checkpoint=str(checkpoint), **kw), out, options, weights=SMALL)


def test_eval_equals_predict_video_by_video(dataset, tmp_path, checkpoint_file):
    record = run(dataset, tmp_path / "run", checkpoint_file, batch_size=1)
    for name in FILES:
        assert (tmp_path / "run" / name).is_file(), name
    result = np.array(json.loads((tmp_path / "run" / "result.json").read_text()))
    predictor = Predictor.create(checkpoint_file, weights=SMALL)
    entries = [line.split() for line in (dataset / "list.txt").read_text().splitlines()]
    expected = np.array([predictor.predict(dataset / "videos" / name).scores for name, _ in entries])
    assert result.shape == (6, 400)
    np.testing.assert_array_equal(result, expected)  # same views, same batch: bit for bit
    labels = np.array([int(label) for _, label in entries])
    top1 = float(np.mean(np.argmax(expected, axis=1) == labels))
    assert record.metrics.all_videos.top1_acc == pytest.approx(top1)
    assert record.metrics.counts == Counts(listed=6, readable=6, failed=0)


def test_metrics_hand_computed():
    scores = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.0, 0.0, 0.0]])
    labels = np.array([1, 2, 2, 0])
    readable = np.array([True, True, True, False])
    # readable: predictions 1, 0, 2 for labels 1, 2, 2 -> top1 2/3; classes {0,1,2}: recall 0(no label), 1, 1/2.
    m = accuracy(scores[:3], labels[:3], readable[:3])
    assert dataclasses.astuple(m) == pytest.approx((2 / 3, 1.0, (0 + 1 + 0.5) / 3))  # top-1, top-5, mean class
    # all: the unreadable video (label 0) counts as wrong: top1 2/4; class 0 now has a label: recall 0.
    m = accuracy(scores, labels, readable)
    assert dataclasses.astuple(m) == pytest.approx((0.5, 0.75, (0 + 1 + 0.5) / 3))


@pytest.mark.slow
def test_bad_videos_are_accounted_and_strict_aborts(dataset, tmp_path, checkpoint_file):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "good.mp4").symlink_to(dataset / "videos" / "bikes.mp4")
    (videos / "corrupt.mp4").write_bytes(b"\x00" * 500)
    write_video_without_frames(videos / "empty.mkv")
    (tmp_path / "list.txt").write_text("good.mp4 1\ncorrupt.mp4 2\nmissing.mp4 3\nempty.mkv 4\n")
    config = EvalConfig(
        list_file=str(tmp_path / "list.txt"), root=str(videos), checkpoint=str(checkpoint_file), batch_size=2
    )
    record = evaluate(config, tmp_path / "run", RunOptions(workers=2, progress=False), weights=SMALL)
    assert record.metrics.counts == Counts(listed=4, readable=1, failed=3)
    reasons = {f["video"]: f["reason"] for f in record.metrics.failures}
    assert reasons["corrupt.mp4"].endswith(
        "corrupt.mp4: cannot open as a video (Invalid data found when processing input)"
    )
    assert reasons["missing.mp4"].endswith("missing.mp4: no such file")
    assert reasons["empty.mkv"].endswith("empty.mkv: no decodable frames")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(result) == 4 and result[1] == [0.0] * 400
    assert record.metrics.all_videos.top1_acc <= 0.25
    with pytest.raises(I3DError, match=r"corrupt.mp4: cannot open as a video .*\(--strict\)"):
        evaluate(config, tmp_path / "strict", RunOptions(workers=0, strict=True, progress=False), weights=SMALL)


def test_resume_refuses_another_configuration(dataset, tmp_path, checkpoint_file):
    run(dataset, tmp_path / "run", checkpoint_file)
    with pytest.raises(I3DError, match="pass --resume"):
        run(dataset, tmp_path / "run", checkpoint_file)
    with pytest.raises(I3DError, match=r"different configuration \(protocol differ\)"):
        evaluate(
            config_for(dataset, checkpoint=str(checkpoint_file), protocol="centercrop"),
            tmp_path / "run",
            RunOptions(progress=False),
            resume=True,
            weights=SMALL,
        )
    three_clips = replace(SMALL, preprocessing=replace(SMALL.preprocessing, num_clips=3))
    for other in (SMALL.with_sampling("1.x"), three_clips):  # the weights' preprocessing is part of the run too
        with pytest.raises(I3DError, match=r"different configuration \(preprocessing differ\)"):
            evaluate(
                config_for(dataset, checkpoint=str(checkpoint_file)),
                tmp_path / "run",
                RunOptions(progress=False),
                resume=True,
                weights=other,
            )
    record = evaluate(
        config_for(dataset, checkpoint=str(checkpoint_file)),
        tmp_path / "run",
        RunOptions(workers=0, progress=False),
        resume=True,
        weights=SMALL,
    )
    assert record.metrics.timing.videos_this_session == 0  # everything was done
    assert record.metrics.config["preprocessing"]["sampling"] == "0.x"


def test_batches_and_shards_partition_the_list():
    assert batches_of(7, 2, (0, 1)) == [[0, 1], [2, 3], [4, 5], [6]]
    shards = [batches_of(7, 2, (i, 3)) for i in range(3)]
    assert shards == [[[0, 1], [6]], [[2, 3]], [[4, 5]]]
    assert sorted(i for s in shards for b in s for i in b) == list(range(7))


@pytest.mark.slow
def test_shards_merge_to_the_single_run(dataset, tmp_path, checkpoint_file):
    single = run(dataset, tmp_path / "single", checkpoint_file, "long.txt", batch_size=2)
    for i in range(2):
        run(dataset, tmp_path / f"s{i}", checkpoint_file, "long.txt", batch_size=2, shard=(i, 2))
    labels = read_labels()
    merged = merge_runs([tmp_path / "s1", tmp_path / "s0"], tmp_path / "merged", labels)
    assert (tmp_path / "merged" / "result.json").read_bytes() == (tmp_path / "single" / "result.json").read_bytes()
    for key in ("all_videos", "readable_videos", "counts", "failures"):
        assert getattr(merged.metrics, key) == getattr(single.metrics, key)
    assert (tmp_path / "merged" / "predictions.jsonl").read_text() == (
        tmp_path / "single" / "predictions.jsonl"
    ).read_text()
    with pytest.raises(I3DError, match="do not cover"):
        merge_runs([tmp_path / "s0"], tmp_path / "bad", labels)
    run(dataset, tmp_path / "other", checkpoint_file, "long.txt", batch_size=2, shard=(1, 2), fusion="score")
    with pytest.raises(I3DError, match="different configuration"):
        merge_runs([tmp_path / "s0", tmp_path / "other"], tmp_path / "bad", labels)


def _cli(dataset, out, checkpoint, *extra):
    return [
        *LAUNCHER,
        "eval",
        "--list",
        str(dataset / "long.txt"),
        "--root",
        str(dataset / "videos"),
        "--checkpoint",
        str(checkpoint),
        "--out-dir",
        str(out),
        "--workers",
        "1",
        *extra,
    ]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(dataset, tmp_path, checkpoint_file):
    reference = subprocess.run(_cli(dataset, tmp_path / "ref", checkpoint_file), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    assert reference.stdout.splitlines()[-4].startswith("top1_acc\t")
    assert reference.stdout.splitlines()[-1] == f"report: {(tmp_path / 'ref' / 'report.html').as_uri()}"
    out = tmp_path / "killed"
    held = tmp_path / "held"  # the run holds after 3 batches (eval_launcher.holding): killed part-way, always
    process = subprocess.Popen(
        _cli(dataset, out, checkpoint_file),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "I3D_TEST_HOLD": f"3:{held}"},
    )
    wait_for(held, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (out / "results.jsonl").read_text().count("\n") == 3
    with (out / "results.jsonl").open("a") as f:
        f.write('{"index": 99, "video": "torn wri')  # a line cut by the kill
    resumed = subprocess.run(_cli(dataset, out, checkpoint_file, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "result.json").read_bytes() == (tmp_path / "ref" / "result.json").read_bytes()
    assert (out / "results.jsonl").read_text().count("\n") == 12


@pytest.mark.slow
def test_two_gloo_ranks_shard_and_rank0_merges(dataset, tmp_path, checkpoint_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "dist"
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        cmd = _cli(dataset, out, checkpoint_file, "--batch-size", "2", "--out", str(tmp_path / "result.json"))
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "top1_acc" in outputs[0][0] and "top1_acc" not in outputs[1][0]
    single = tmp_path / "single"
    code = subprocess.run(_cli(dataset, single, checkpoint_file, "--batch-size", "2"), capture_output=True).returncode
    assert code == 0
    assert (out / "result.json").read_bytes() == (single / "result.json").read_bytes()
    assert (tmp_path / "result.json").read_bytes() == (single / "result.json").read_bytes()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["rank0", "rank1"]


@pytest.mark.slow
def test_cli_eval_and_merge(dataset, tmp_path, checkpoint_file, capsys, monkeypatch):
    import i3d_infer.model.weights as weights

    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS", SMALL)
    base = [
        "eval",
        "--list",
        str(dataset / "list.txt"),
        "--root",
        str(dataset / "videos"),
        "--checkpoint",
        str(checkpoint_file),
        "--workers",
        "0",
    ]
    assert main([*base, "--shard", "0/2", "--out-dir", str(tmp_path / "a")]) == 0
    assert main([*base, "--shard", "1/2", "--out-dir", str(tmp_path / "b")]) == 0
    assert (
        main(
            [
                "merge",
                str(tmp_path / "a"),
                str(tmp_path / "b"),
                "--out-dir",
                str(tmp_path / "m"),
                "--out",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines[-4:-1]] == ["top1_acc", "top5_acc", "mean_class_accuracy"]
    assert lines[-1] == f"report: {(tmp_path / 'm' / 'report.html').as_uri()}"
    assert len(json.loads((tmp_path / "r.json").read_text())) == 6
    assert main([*base, "--shard", "2/2", "--out-dir", str(tmp_path / "c")]) == 2
    capsys.readouterr()
    assert main([*base, "--shard", "0/2", "--out-dir", str(tmp_path / "a"), "--resume", "--sampling", "1.x"]) == 2
    assert "different configuration (preprocessing differ)" in capsys.readouterr().err
    missing = ["eval", "--list", str(tmp_path / "missing.txt"), "--root", ".", "--out-dir", str(tmp_path / "d")]
    assert main(missing) == 2
    assert "missing.txt: cannot read list file" in capsys.readouterr().err
