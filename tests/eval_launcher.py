"""Run the ``i3d`` CLI with the reduced test pipeline (2 clips x 8 frames at 64x64) in a separate process.

Used by tests that must kill a run or start several processes (torchrun-style ranks). Usage:
``python tests/eval_launcher.py eval --list ... --out-dir ...``; with ``I3D_TEST_HOLD=N:PATH`` the run stops for
good once N batches are on disk and creates PATH, so a test can kill it part-way whatever the machine's speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import i3d_infer.model.weights as weights
from i3d_infer.cli import main
from i3d_infer.evaluate import runner
from reduced import SMALL


def holding(record, batches: int, marker: Path, release: threading.Event | None = None):
    """``_Recorder.record`` made to wait after ``batches`` batches are fsynced: it creates ``marker``, then waits for
    ``release`` (None: forever). The batches before stay on disk as a killed run leaves them."""
    written = 0

    def held(self, *args, **kwargs):
        nonlocal written
        if written == batches:
            marker.touch()
            (release or threading.Event()).wait()
        written += 1
        return record(self, *args, **kwargs)

    return held


def wait_for(marker: Path, process: subprocess.Popen) -> None:
    """Until a held run has created ``marker``; the run's error if it ended first."""
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before holding: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)


if __name__ == "__main__":
    weights.DEFAULT_WEIGHTS = SMALL
    if os.environ.get("I3D_TEST_HOLD"):
        count, path = os.environ["I3D_TEST_HOLD"].split(":", 1)
        runner._Recorder.record = holding(runner._Recorder.record, int(count), Path(path))
    sys.exit(main(sys.argv[1:]))
