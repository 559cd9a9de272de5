"""Whole runs over the real-world corpus: the decode workers and ``i3d eval --workers 2`` take every video a user
may have, record as failures exactly the files no decoder reads (one line each, naming the file), say which decoder
read each video, and give ``i3d predict``'s scores for the rest (same views, batch of one: bit for bit)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from i3d_infer import Predictor
from i3d_infer.cli import main
from i3d_infer.data.datasets import VideoDataset
from i3d_infer.transport.slots import DecodeStream
from reduced import SMALL, SMALL_PRE
from test_data_corpus import OPENCV_CANNOT, UNREADABLE


@pytest.fixture(scope="module")
def corpus_list(corpus, tmp_path_factory):
    """A videos list of every corpus file (labels 0..N-1), its root being the corpus directory."""
    root = next(iter(corpus.values())).parent
    names = [path.name for path in corpus.values()]
    list_file = tmp_path_factory.mktemp("corpus_list") / "list.txt"
    list_file.write_text("".join(f"{name} {k}\n" for k, name in enumerate(names)))
    return list_file, root, names, {corpus[name].name for name in UNREADABLE}


def test_decode_workers_read_the_corpus(corpus_list):
    """Two worker processes, short-side frames: every readable video's frames equal the in-process read; the 8:1
    video's frames (512x64 after the resize) come through the pipe, the others through a shared-memory slot."""
    list_file, root, names, unreadable = corpus_list
    dataset = VideoDataset(list_file, root, protocol="centercrop", preprocessing=SMALL_PRE)
    stream = DecodeStream(dataset, list(range(len(names))), 2, timeout=60, batch_size=2)
    try:
        for decoded in stream:
            sample, name = decoded.sample, names[decoded.sample.index]
            if name in unreadable:
                assert sample.error.startswith(f"{root / name}: ") and "\n" not in sample.error
                continue
            assert sample.error is None, sample.error
            expected = dataset.frames(sample.index)
            np.testing.assert_array_equal(np.asarray(sample.frames.frames), expected.frames.frames)
            assert (decoded.slot is None) == (name == "wide.mp4"), name
            assert sample.decoder == expected.decoder
            stream.release(decoded)
    finally:
        stream.close()


@pytest.mark.slow
def test_eval_over_the_corpus_equals_predict(corpus, corpus_list, tmp_path, checkpoint_file, small_weights):
    list_file, root, names, unreadable = corpus_list
    out = tmp_path / "run"
    args = ["eval", "--list", str(list_file), "--root", str(root), "--checkpoint", str(checkpoint_file)]
    assert main([*args, "--workers", "2", "--protocol", "centercrop", "--out-dir", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(row["index"] for row in rows) == list(range(len(names)))
    failed = {names[row["index"]]: row["error"] for row in rows if row["error"] is not None}
    assert set(failed) == unreadable
    for name, error in failed.items():
        assert error.startswith(f"{root / name}: ") and "\n" not in error
    predictor = Predictor.create(checkpoint_file, weights=SMALL)
    for row in rows:
        name = names[row["index"]]
        if name in unreadable:
            continue
        prediction = predictor.predict(root / name, "centercrop")
        np.testing.assert_array_equal(np.array(row["scores"]), prediction.scores, err_msg=name)
        stem = name.rsplit(".", 1)[0]
        assert (
            row["decoder"]
            == prediction.decoder
            == ("pyav (opencv: no decodable frames)" if stem in OPENCV_CANNOT else "opencv")
        )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"] == {"listed": len(names), "readable": len(names) - len(unreadable), "failed": 4}


def test_predict_and_extract_take_what_opencv_cannot(corpus, tmp_path, checkpoint_file, small_weights, capsys):
    """``i3d predict`` says which decoder read an AV1 file (one line, and in --json); ``i3d extract``'s frames of
    it and of a rotated file are the reference's (upright)."""
    import cv2

    from i3d_infer.prepare.extract import ExtractOptions, extract_video
    from test_data_corpus import reference_frames

    assert main(["predict", str(corpus["av1"]), "--checkpoint", str(checkpoint_file)]) == 0
    assert "24 frames, protocol seed, decoded by pyav (opencv: no decodable frames))" in capsys.readouterr().out
    assert main(["predict", str(corpus["av1"]), "--checkpoint", str(checkpoint_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decoder"] == "pyav (opencv: no decodable frames)"
    for name in ("av1", "rotate90"):
        count = extract_video(corpus[name], tmp_path / name, ExtractOptions(size=None, quality=100))
        reference = reference_frames(corpus[name])
        assert count == len(reference)
        first = cv2.cvtColor(cv2.imread(str(tmp_path / name / "img_00001.jpg")), cv2.COLOR_BGR2RGB)
        assert first.shape == reference[0].shape  # upright: 64 wide, 96 high for rotate90
        assert np.abs(first.astype(int) - reference[0]).mean() < 2  # JPEG at quality 100


def test_extract_all_names_what_pyav_read(corpus, tmp_path):
    from i3d_infer.prepare.extract import REPORT_NAME, extract_all

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("h264", "av1"):
        (videos / corpus[name].name).symlink_to(corpus[name])
    report = extract_all(videos, tmp_path / "frames", workers=1, progress=False, log=lambda _: None)
    assert report.handed_over == [{"video": str(videos / "av1.mkv"), "decoder": "pyav (opencv: no decodable frames)"}]
    assert "2 extracted (1 read by PyAV: OpenCV could not)" in report.summary()
    assert json.loads((tmp_path / "frames" / REPORT_NAME).read_text())["handed_over"] == report.handed_over
