import math

import numpy as np
import pytest

from harness.metrics import Metrics, compute


def test_known_values():
    ref = np.array([[3.0, 4.0]], dtype=np.float32)
    cand = np.array([[3.0, 5.0]], dtype=np.float32)
    m = compute(ref, cand)
    assert m.max_abs == 1.0 and m.max_abs_index == (0, 1)
    assert m.rel_l2 == pytest.approx(1 / 5)
    assert m.rmse == pytest.approx(math.sqrt(0.5))
    assert m.cosine == pytest.approx((9 + 20) / (5 * math.sqrt(34)))
    assert m.ref_mean == 3.5 and m.cand_mean == 4.0


def test_chunked_equals_whole(monkeypatch):
    g = np.random.default_rng(0)
    ref = g.standard_normal((3, 50, 70)).astype(np.float32)
    cand = ref + 1e-3 * g.standard_normal(ref.shape).astype(np.float32)
    whole = compute(ref, cand)
    import harness.metrics as M

    monkeypatch.setattr(M, "CHUNK", 997)
    chunked = compute(ref, cand)
    assert chunked.max_abs == whole.max_abs and chunked.max_abs_index == whole.max_abs_index
    assert chunked.rel_l2 == pytest.approx(whole.rel_l2, rel=1e-12)
    assert chunked.ref_std == pytest.approx(whole.ref_std, rel=1e-9)


def test_zero_reference_is_defined():
    z = np.zeros(5, np.float32)
    assert compute(z, z).rel_l2 == 0.0 and compute(z, z).cosine == 1.0
    assert compute(z, z + 1).rel_l2 == math.inf


def test_nonfinite_counted_and_json_roundtrip():
    ref = np.ones(4, np.float32)
    cand = ref.copy()
    cand[2] = np.nan
    m = compute(ref, cand)
    assert m.cand_nonfinite == 1 and math.isnan(m.rel_l2)
    back = Metrics.from_json(m.to_json())
    assert back.cand_nonfinite == 1 and math.isnan(back.rel_l2) and back.max_abs_index == m.max_abs_index


def test_shape_mismatch_refused():
    with pytest.raises(ValueError):
        compute(np.zeros((2, 3)), np.zeros((3, 2)))
