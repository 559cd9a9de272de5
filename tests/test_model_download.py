"""Checkpoint download against a local HTTP server on 127.0.0.1: cache, sha256 prefix, short transfers, no network."""

from __future__ import annotations

import socket

import pytest

from i3d_infer.errors import DownloadError
from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.download import download, expected_hash_prefix

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def test_hash_prefix_from_name():
    name = "i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb_20200814-7c30d5bb.pth"
    assert expected_hash_prefix(name) == "7c30d5bb"
    assert expected_hash_prefix("plain.pth") is None


def test_downloads_once_into_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("I3D_INFER_CACHE", str(tmp_path / "cache"))
    name = server.add("weights", PAYLOAD)
    first = download(f"{server.url}/{name}", progress=False)
    second = download(f"{server.url}/{name}", progress=False)
    assert first == second == tmp_path / "cache" / name
    assert first.read_bytes() == PAYLOAD
    assert server.requests == [name]  # the second call is served from the cache
    assert [p.name for p in first.parent.iterdir()] == [name]  # no temporary files left


def test_wrong_hash_is_deleted(server, tmp_path):
    name = "weights-00000000.pth"
    server.files[name] = PAYLOAD
    with pytest.raises(DownloadError, match=r"is corrupt: sha256 [0-9a-f]{8}\.\.\. does not match 00000000.*deleted"):
        download(f"{server.url}/{name}", directory=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_truncated_transfer_is_deleted(server, tmp_path):
    name = server.add("weights", PAYLOAD)
    server.truncate.add(name)
    with pytest.raises(DownloadError, match=r"cut short: got 524288 of 1048576 bytes"):
        download(f"{server.url}/{name}", directory=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error(server, tmp_path):
    with pytest.raises(DownloadError, match=r"cannot download .*/missing-12345678.pth: Not Found; download it by hand"):
        download(f"{server.url}/missing-12345678.pth", directory=tmp_path, progress=False)


def test_no_network_says_where_to_put_the_file(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused, like an offline machine
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/i3d-7c30d5bb.pth"
    with pytest.raises(DownloadError) as info:
        download(url, directory=tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message and "refused" in message
    assert f"put it at {tmp_path / 'i3d-7c30d5bb.pth'}" in message


def test_load_model_from_url(server, tmp_path, monkeypatch, checkpoint_file, mm_state):
    monkeypatch.setenv("I3D_INFER_CACHE", str(tmp_path))
    name = server.add("i3d_synthetic", checkpoint_file.read_bytes())
    model = load_model(f"{server.url}/{name}", progress=False)
    assert (tmp_path / name).is_file()
    assert model.network.fc.bias.equal(mm_state["cls_head.fc_cls.bias"])
