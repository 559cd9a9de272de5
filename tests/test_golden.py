"""Golden logits: a fixed synthetic checkpoint and a fixed input give recorded logits.

Re-record after an intended change with ``I3D_RECORD_GOLDEN=1 pytest tests/test_golden.py`` and commit the JSON.
Tolerance: max |diff| <= 1e-4 * max |logit| (float32 on different CPUs and torch versions).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from i3d_infer.model.checkpoint import build_model, convert_state_dict
from i3d_infer.model.config import i3d_nl_dot_product_r50

GOLDEN = Path(__file__).parent / "golden" / "i3d_nl_synthetic_seed0_logits.json"
RECORD = os.environ.get("I3D_RECORD_GOLDEN") == "1"
RTOL = 1e-4


def test_golden_logits(mm_state):
    model = build_model(i3d_nl_dot_product_r50())
    model.network.load_state_dict(convert_state_dict(mm_state, model.network), strict=True)
    views = np.random.default_rng(1234).integers(0, 256, (2, 3, 16, 64, 64), dtype=np.uint8)
    with torch.inference_mode():
        logits = model(torch.from_numpy(views)).numpy()
    if RECORD:
        record = {"input": "numpy default_rng(1234) uint8 (2,3,16,64,64)", "logits": logits.tolist()}
        GOLDEN.write_text(json.dumps(record))
        pytest.skip(f"recorded {GOLDEN}")
    expected = np.array(json.loads(GOLDEN.read_text())["logits"], dtype=np.float32)
    assert logits.shape == expected.shape == (2, 400)
    assert np.abs(logits - expected).max() <= RTOL * np.abs(expected).max()
    assert not np.allclose(logits[0], logits[1])  # the two inputs are told apart
