"""``i3d features``: per-clip features equal to an independent reference, the outputs users consume, resume and bad
input.

Reference: every frame read with ``cv2.VideoCapture``, mmaction2 1.2.0's ``UntrimmedSampleFrames`` (transcribed),
mmaction2's resize and crops, the tests' functional forward stopped at ``FeatureHead`` (avg over H, W, then T) - on
the reduced pipeline (8-frame clips at 64 px) and a synthetic checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from i3d_infer.cli import main
from i3d_infer.data.sampling import DenseClips
from i3d_infer.features.plan import FeaturePlan, plan_outputs
from i3d_infer.features.run import FeatureJob, extract_features
from i3d_infer.predict import Predictor
from i3d_infer.runtime import BackendSpec, make_backend
from mmaction_reference import (
    mmaction2_untrimmed_frame_inds,
    mmaction2_views,
    normalize,
    read_all_frames,
    reference_forward,
)
from reduced import SMALL

DENSE = DenseClips(clip_len=8, clip_interval=16, frame_interval=2)
PLAN = FeaturePlan(dense=DENSE)


def reference_features(path, mm_state, protocol: str = "centercrop", clips: DenseClips = DENSE) -> np.ndarray:
    """``(clips, crops, 2048)`` float64 features of mmaction2's feature extraction (average_clips=None)."""
    frames = read_all_frames(path)
    inds = mmaction2_untrimmed_frame_inds(len(frames), clips.clip_len, clips.clip_interval, clips.frame_interval)
    views = mmaction2_views(frames, inds, protocol, SMALL.preprocessing.size)
    with torch.inference_mode():
        feats = reference_forward(normalize(torch.from_numpy(views)), mm_state, features=True).double().numpy()
    return feats.reshape(-1, len(inds), feats.shape[-1]).transpose(1, 0, 2)  # crop-major -> (clips, crops, dim)


def assert_close(ours: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> None:
    """Max |difference| within ``rtol`` of the largest |value| (the features' scale)."""
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= rtol * np.abs(expected).max()


def run_features(tmp_path, videos, *, backend, plan=PLAN, workers=0, head=None):
    tasks = plan_outputs([(Path(v), Path(v).name) for v in videos], tmp_path)
    job = FeatureJob(plan, SMALL, tmp_path, workers=workers)
    return tasks, extract_features(job, tasks, backend, head=head)


@pytest.fixture
def small_cli(checkpoint_file, small_weights):
    """``i3d features`` on the reduced pipeline."""

    def run(*args) -> int:
        return main(["features", *map(str, args), "--checkpoint", str(checkpoint_file), "--no-progress"])

    return run


@pytest.mark.parametrize("engine", ["eager", "fast"])
def test_dense_features_equal_mmaction2(tmp_path, sample_videos, checkpoint_file, mm_state, engine):
    """Two decode workers, batches across the videos: each video's (clips, 2048) equals the reference."""
    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, engine=engine, features=True), SMALL)
    videos = [sample_videos["bikes"], sample_videos["carphone_pristine"]]
    plan = FeaturePlan(dense=DENSE, batch_size=3)
    tasks, summary = run_features(tmp_path, videos, backend=backend, plan=plan, workers=2)
    assert (summary.done, summary.failed) == (2, [])
    for task, video in zip(tasks, videos, strict=True):
        expected = reference_features(video, mm_state)[:, 0]
        assert_close(np.load(task.out), expected)
        assert np.load(task.out).dtype == np.float32


def test_threecrop_views_each_and_mean(tmp_path, sample_videos, checkpoint_file, mm_state):
    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, features=True), SMALL)
    video = sample_videos["carphone_pristine"]
    expected = reference_features(video, mm_state, "threecrop")
    for views in ("each", "mean"):
        plan = FeaturePlan(dense=DENSE, protocol="threecrop", views=views, batch_size=4)
        tasks, _ = run_features(tmp_path / views, [video], backend=backend, plan=plan)
        assert_close(np.load(tasks[0].out), expected if views == "each" else expected.mean(axis=1))


def test_batches_fill_across_videos(tmp_path, sample_videos, checkpoint_file):
    """Short videos do not starve the model: a batch takes the clips of the next video."""
    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, features=True), SMALL)
    calls = []

    def counting(views):
        calls.append(len(views))
        return backend(views)

    videos = [sample_videos["carphone_pristine"]] * 3  # 7 clips each
    run_features(tmp_path, [Path(v) for v in videos[:1]], backend=counting, plan=FeaturePlan(dense=DENSE, batch_size=5))
    assert calls == [5, 2]
    calls.clear()
    links = []
    for k, video in enumerate(videos):
        links.append(tmp_path / f"v{k}.mp4")
        links[-1].symlink_to(video)
    run_features(tmp_path / "three", links, backend=counting, plan=FeaturePlan(dense=DENSE, batch_size=5))
    assert calls == [5, 5, 5, 5, 1]  # 21 clips


def test_test_clips_through_the_head_are_predicts_clip_logits(tmp_path, sample_videos, checkpoint_file):
    """``--clips test``: each clip's feature through the classifier's fc is that clip's logits in ``i3d predict``
    (so the mean feature gives the mean clip logit)."""
    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, features=True), SMALL)
    video = sample_videos["bikes"]
    plan = FeaturePlan(clips="test", protocol="seed", scores=True)
    tasks, _ = run_features(tmp_path, [video], backend=backend, plan=plan, head=backend.head)
    features = np.load(tasks[0].out)  # (num_clips, 2048)
    weight, bias = backend.head
    predictor = Predictor.create(checkpoint_file, weights=SMALL)
    from i3d_infer.data.pipeline import read_video

    logits = predictor.backend(read_video(video, "seed", SMALL.preprocessing).views)  # (clips, classes)
    assert features.shape == (SMALL.preprocessing.num_clips, 2048)
    assert_close(features @ weight.T + bias, logits)
    mean = np.load(tasks[0].out.with_suffix(".mean.npy"))
    assert_close(mean @ weight.T + bias, logits.mean(axis=0))
    scores = np.load(tasks[0].out.with_suffix(".scores.npy"))
    assert_close(scores, predictor.predict(video).clip_scores)


@pytest.mark.slow
def test_onnx_backends_give_the_features(tmp_path, sample_videos, checkpoint_file, mm_state, small_cli):
    model = tmp_path / "features.onnx"
    code = main(
        ["export", "--checkpoint", str(checkpoint_file), "--output", str(model), "--output-kind", "features",
         "--shape", "1", "1", "3", "8", "64", "64", "--dynamic-batch", "--no-verify"]
    )  # fmt: skip
    assert code == 0
    video = sample_videos["carphone_pristine"]
    expected = reference_features(video, mm_state)[:, 0]
    for backend in ("onnxruntime", "openvino"):
        out = tmp_path / backend
        spec = BackendSpec(backend=backend, model=model, features=True)
        tasks, _ = run_features(out, [video], backend=make_backend(spec, SMALL))
        assert_close(np.load(tasks[0].out), expected, rtol=1e-4)  # the export's fp32 tolerance
    logits_model = tmp_path / "logits.onnx"
    main(["export", "--checkpoint", str(checkpoint_file), "--output", str(logits_model), "--shape", "1", "1", "3",
          "8", "64", "64", "--dynamic-batch", "--no-verify"])  # fmt: skip
    assert small_cli(video, "--out-dir", tmp_path / "x", "--backend", "onnxruntime", "--model", logits_model) == 2


def test_cli_outputs(tmp_path, sample_videos, corpus, small_cli, capsys):
    """The layout, index.jsonl, features.json, failures, --half, --scores, and a rerun that skips what is done."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "bikes.mp4").symlink_to(sample_videos["bikes"])
    (root / "long.mp4").symlink_to(corpus["long"])  # 1500 frames
    (root / "av1.mkv").symlink_to(corpus["av1"])
    (root / "broken.mp4").write_bytes(b"\0" * 100)
    (root / "list.txt").write_text("a/b/bikes.mp4 0\nlong.mp4 1\nav1.mkv 2\nbroken.mp4 3\n")
    out = tmp_path / "out"
    args = ["--list", root / "list.txt", "--root", root, "--out-dir", out, "--half", "--scores", "--workers", "2"]
    assert small_cli(*args) == 1  # one video failed
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["extracted"] == 3
    assert (
        captured.err.strip().splitlines()[-1]
        == f"i3d: {root / 'broken.mp4'}: cannot open as a video (Invalid data found when processing input)"
    )
    bikes = np.load(out / "a" / "b" / "bikes.npy")
    assert bikes.dtype == np.float16 and bikes.shape == (16, 2048)  # 250 frames: centres 8, 24, ..., 248
    assert np.load(out / "long.npy").shape == (94, 2048)
    assert np.load(out / "a" / "b" / "bikes.scores.npy").shape == (16, 400)
    index = {r["video"]: r for r in map(json.loads, (out / "index.jsonl").read_text().splitlines())}
    assert set(index) == {"a/b/bikes.mp4", "long.mp4", "av1.mkv"}
    record = index["a/b/bikes.mp4"]
    assert record["features"] == "a/b/bikes.npy" and record["num_frames"] == 250 and record["num_clips"] == 16
    assert record["clips"]["centre"][:3] == [8, 24, 40] and record["clips"]["first"][:2] == [0, 16]
    assert record["clips"]["centre_seconds"][1] == pytest.approx(24 / 25) and record["fps"] == 25
    assert index["av1.mkv"]["decoder"] == "pyav (opencv: no decodable frames)"
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["video"] for f in failures] == ["broken.mp4"]
    description = json.loads((out / "features.json").read_text())
    assert description["clips"] == {"placement": "UntrimmedSampleFrames", "clip_len": 8, "clip_interval": 16,
                                    "frame_interval": 2}  # fmt: skip
    assert description["dtype"] == "float16" and len(description["checkpoint_sha256"]) == 64
    (out / "a" / "b" / "bikes.npy").unlink()
    assert small_cli(*args) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) | {"out_dir": None} == {
        "out_dir": None, "extracted": 1, "skipped": 2, "failed": 1, "clips": 16}  # fmt: skip
    lines = (out / "index.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["video"] for line in lines) == sorted(index)  # each once


def test_bad_lists_are_refused_up_front(tmp_path, sample_videos, small_cli, capsys):
    (tmp_path / "a.mp4").symlink_to(sample_videos["bikes"])
    (tmp_path / "a.avi").symlink_to(sample_videos["bikes"])
    for lines, says in (
        ("a.mp4 0\na.avi 1\n", "a.avi: its features would overwrite those of a.mp4"),
        ("../a.mp4 0\n", "../a.mp4: its features would be written outside"),
        (f"{tmp_path / 'a.mp4'} 0\n", "a.mp4: its features would be written outside"),
    ):
        (tmp_path / "list.txt").write_text(lines)
        out = tmp_path / "out"
        assert small_cli("--list", tmp_path / "list.txt", "--root", tmp_path, "--out-dir", out) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1
        assert not out.exists()


def test_a_killed_run_continues(tmp_path, sample_videos, checkpoint_file):
    """Killed after its first video: that video's file is whole, no partial file is left, the next run extracts
    only the rest, and the index has each video once."""
    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, features=True), SMALL)
    videos = [sample_videos["carphone_pristine"], sample_videos["bikes"]]
    tasks = plan_outputs([(v, v.name) for v in videos], tmp_path)
    job = FeatureJob(FeaturePlan(dense=DENSE), SMALL, tmp_path, workers=1)

    def killed(clips):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(job, tasks, backend, on_video=killed)
    assert tasks[0].out.exists() and not tasks[1].out.exists()
    assert not list(tmp_path.glob(".*.partial"))
    summary = extract_features(job, tasks, backend)
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, [])
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert [json.loads(line)["video"] for line in lines] == [v.name for v in videos]


def test_plan_checks():
    with pytest.raises(Exception, match="--views"):
        FeaturePlan(views="median")
    assert FeaturePlan(protocol="threecrop").feature_shape(5, 2048) == (5, 3, 2048)
    assert replace(FeaturePlan(protocol="threecrop"), views="mean").feature_shape(5, 2048) == (5, 2048)


def test_shards_then_the_whole_list(tmp_path, corpus, small_cli, capsys):
    """Two --shard runs split the list (each writing its index part); the whole list's run then extracts nothing
    and its index.jsonl has every video once. A one-frame video gets one clip on its middle frame."""
    names = ["one_frame", "three_frames", "tiny", "portrait"]
    (tmp_path / "list.txt").write_text("".join(f"{corpus[n].name} {k}\n" for k, n in enumerate(names)))
    out = tmp_path / "out"
    base = ["--list", tmp_path / "list.txt", "--root", corpus["tiny"].parent, "--out-dir", out, "--workers", "0"]
    assert small_cli(*base, "--shard", "0/2") == 0 and small_cli(*base, "--shard", "1/2") == 0
    parts = [json.loads(line)["video"] for p in sorted(out.glob("index.*-of-2.jsonl")) for line in p.open()]
    assert sorted(parts) == sorted(corpus[n].name for n in names)
    assert small_cli(*base) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["skipped"] == 4
    index = [json.loads(line) for line in (out / "index.jsonl").open()]
    assert sorted(r["video"] for r in index) == sorted(parts)
    one = next(r for r in index if r["video"] == "one_frame.mp4")
    assert one["num_clips"] == 1 and one["clips"]["centre"] == [0] and np.load(out / "one_frame.npy").shape == (1, 2048)


def test_the_slots_carry_what_the_pipe_carries(tmp_path, corpus, sample_videos, checkpoint_file):
    """Clip chunks through shared-memory slots give the pipe's features bit for bit. A slot holds a chunk of 8 clips
    at 16:9 (64x114 here) with every frame distinct: bikes.mp4's full chunks (150x64, 2.35:1) take the pipe; 1080p
    (114x64), and 1280x160 (512x64) with its 8 frames in one short chunk, fit."""
    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, features=True), SMALL)
    videos = [corpus["h264"], corpus["hd"], corpus["wide"], corpus["portrait"], sample_videos["carphone_pristine"],
              sample_videos["bikes"]]  # fmt: skip
    tasks = {}
    for transport in ("pipe", "slots"):
        out = tmp_path / transport
        tasks[transport] = plan_outputs([(Path(v), Path(v).name) for v in videos], out)
        job = FeatureJob(PLAN, SMALL, out, workers=2, transport=transport)
        summary = extract_features(job, tasks[transport], backend)
        assert summary.done == len(videos)
        if transport == "slots":
            assert summary.transport == {"slots": 5, "pipe": 2}  # a chunk per short video; bikes' two by pipe
    for ours, piped in zip(tasks["slots"], tasks["pipe"], strict=True):
        np.testing.assert_array_equal(np.load(ours.out), np.load(piped.out))
