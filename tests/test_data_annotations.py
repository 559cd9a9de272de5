"""Annotation CSVs -> label map and list files, both naming schemes, every malformed case counted, never a crash."""

from __future__ import annotations

import json

import pytest

from i3d_infer.cli import main
from i3d_infer.errors import I3DError
from i3d_infer.prepare.annotations import ListsReport, class_names, make_lists, read_annotations

TRAIN = """label,youtube_id,time_start,time_end,split,is_cc
abseiling,aaaaaaaaaaa,10,20,train,0
"air drumming",bbbbbbbbbbb,0,10,train,0
"passing American football (in game)",ccccccccccc,5,15,train,0
zumba,ddddddddddd,1,11,train,0
abseiling,eeeeeeeeeee,3,13,train,0
"""
VAL = """label,youtube_id,time_start,time_end,split
zumba,v_zumba_001,4,14,val
"air drumming",v-drum_0002,0,10,val
"passing American football (in game)",v_football3,30.0,40.0,val
abseiling,v_abseil004,7,17,val
abseiling,v_abseil004,50,60,val
abseiling,no_video_05,0,10,val
too,few,fields
zumba,v_badtime06,start,end,val
juggling,v_unknown07,0,10,val
"""


@pytest.fixture
def dataset(tmp_path):
    (tmp_path / "kinetics_train.csv").write_text(TRAIN)
    (tmp_path / "kinetics_val.csv").write_text(VAL)
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    for name in ("v_zumba_001.mp4", "v-drum_0002_000000_000010.mp4", "sub/v_football3_000030_000040.mp4",
                 "v_abseil004_000050_000060.mp4", "v_unknown07.mp4", "stray_video.mp4", "notes.txt"):  # fmt: skip
        (videos / name).write_bytes(b"")
    frames = tmp_path / "rawframes"
    for name, count in (("v_zumba_001", 3), ("v-drum_0002_000000_000010", 5), ("stray_dir", 1)):
        (frames / name).mkdir(parents=True)
        for i in range(count):
            (frames / name / f"img_{i + 1:05d}.jpg").write_bytes(b"")
    (frames / ".tmp-v_abseil004").mkdir()  # an unfinished extraction is not a video
    return tmp_path


def test_class_names_sorted_with_underscores(dataset):
    assert class_names(dataset / "kinetics_train.csv") == [
        "abseiling", "air_drumming", "passing_American_football_(in_game)", "zumba"]  # fmt: skip


def test_lists_and_report(dataset):
    result = make_lists(dataset / "kinetics_train.csv", dataset / "kinetics_val.csv", dataset / "out",
                        videos=dataset / "videos", rawframes=dataset / "rawframes")  # fmt: skip
    assert result.label_map.read_text().splitlines()[1] == "air_drumming"
    assert result.lists["videos"].read_text().splitlines() == [
        "sub/v_football3_000030_000040.mp4 2",
        "v-drum_0002_000000_000010.mp4 1",
        "v_abseil004_000050_000060.mp4 0",
        "v_zumba_001.mp4 3",
    ]
    assert result.lists["rawframes"].read_text().splitlines() == ["v-drum_0002_000000_000010 5 1", "v_zumba_001 3 3"]
    videos = result.reports["videos"]
    assert videos.videos_without_annotation == ["stray_video.mp4"]
    assert videos.annotations_without_video == ["no_video_05"]
    assert videos.duplicate_ids == ["v_abseil004"]
    assert videos.malformed_rows == [
        "kinetics_val.csv:8: expected 5 or 6 fields, got 3",
        "kinetics_val.csv:9: time_start/time_end are not numbers",
    ]
    assert videos.unknown_labels == ["kinetics_val.csv:10: juggling"]
    assert videos.summary() == ("4 matched, 1 videos without annotation, 1 annotations without video, "
                                "1 duplicate ids, 2 malformed rows, 1 unknown labels")  # fmt: skip
    saved = json.loads(result.report_file.read_text())
    assert saved["rawframes"]["matched"] == 2 and saved["rawframes"]["videos_without_annotation"] == ["stray_dir"]


def test_rerun_is_identical(dataset):
    args = (dataset / "kinetics_train.csv", dataset / "kinetics_val.csv")
    first = make_lists(*args, dataset / "a", videos=dataset / "videos")
    second = make_lists(*args, dataset / "b", videos=dataset / "videos")
    assert first.lists["videos"].read_bytes() == second.lists["videos"].read_bytes()


def test_not_an_annotation_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(I3DError, match=r"x.csv: not a Kinetics annotation CSV"):
        read_annotations(path, ListsReport())
    with pytest.raises(I3DError, match=r"missing.csv: cannot read annotation CSV"):
        read_annotations(tmp_path / "missing.csv", ListsReport())


def test_cli_lists(dataset, capsys):
    code = main(["lists", "--train", str(dataset / "kinetics_train.csv"), "--split", str(dataset / "kinetics_val.csv"),
                 "--videos", str(dataset / "videos"), "--out", str(dataset / "cli")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "videos list:" in out and "4 matched" in out
    assert (dataset / "cli" / "val_list_videos.txt").is_file()
    assert main(["lists", "--train", "nope.csv", "--split", "x.csv", "--videos", ".", "--out", str(dataset)]) == 2


def test_fetch_annotations_from_a_local_server(server, tmp_path, capsys):
    urls = []
    for split in ("train", "val", "test"):
        server.files[f"kinetics_{split}.csv"] = TRAIN.encode()
        urls += ["--url", f"{server.url}/kinetics_{split}.csv"]
    assert main(["fetch", "annotations", "--to", str(tmp_path), *urls]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / f"kinetics_{s}.csv") for s in ("train", "val", "test")]
    assert class_names(tmp_path / "kinetics_val.csv")[0] == "abseiling"
    server.truncate.add("kinetics_val.csv")
    (tmp_path / "kinetics_val.csv").unlink()
    assert main(["fetch", "annotations", "--to", str(tmp_path), "--url", f"{server.url}/kinetics_val.csv"]) == 2
    assert "cut short" in capsys.readouterr().err and not (tmp_path / "kinetics_val.csv").exists()


def test_default_annotation_urls_are_the_seeds():
    from i3d_infer.prepare.annotations import KINETICS400_ANNOTATIONS

    assert [u.rsplit("/", 1)[1] for u in KINETICS400_ANNOTATIONS] == [
        "kinetics_train.csv", "kinetics_val.csv", "kinetics_test.csv"]  # fmt: skip
    assert all(u.startswith("https://download.openmmlab.com/mmaction/dataset/kinetics400/annotations/")
               for u in KINETICS400_ANNOTATIONS)  # fmt: skip


def test_data_preparation_commands_start_without_torch(dataset):
    """`i3d lists` (like extract, fetch, merge, --help) does not load torch: it starts in a fraction of a second."""
    import subprocess
    import sys

    args = ["lists", "--train", str(dataset / "kinetics_train.csv"), "--split", str(dataset / "kinetics_val.csv"),
            "--videos", str(dataset / "videos"), "--out", str(dataset / "no_torch")]  # fmt: skip
    code = f"import sys; from i3d_infer.cli import main; sys.exit(main({args!r}) or 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (dataset / "no_torch" / "val_list_videos.txt").is_file()


@pytest.mark.parametrize(("layout", "pattern", "first"), [("denseflow", "flow_{}_{:05d}.jpg", 0),
                                                           ("mmaction2-cpu", "{}_{:05d}.jpg", 1)])  # fmt: skip
def test_flow_list_counts_fields_and_says_how_to_read_them(dataset, capsys, layout, pattern, first):
    flow = dataset / "flow"
    for name, fields in (("v_zumba_001", 2), ("v-drum_0002_000000_000010", 4)):  # N frames: N - 1 fields
        (flow / name).mkdir(parents=True)
        for i in range(fields):
            for axis in "xy":
                (flow / name / pattern.format(axis, i + first)).write_bytes(b"")
            (flow / name / f"img_{i + 1:05d}.jpg").write_bytes(b"")  # --task both: the RGB frames beside them
    args = ["lists", "--train", str(dataset / "kinetics_train.csv"), "--split", str(dataset / "kinetics_val.csv")]
    assert main([*args, "--flow", str(flow), "--out", str(dataset / "out")]) == 0
    lines = (dataset / "out" / "val_list_flow.txt").read_text().splitlines()
    assert lines == ["v-drum_0002_000000_000010 4 1", "v_zumba_001 2 3"]  # build_file_list counts the x images
    start = "start_index=0" if layout == "denseflow" else "start_index=1"
    assert start in capsys.readouterr().out
