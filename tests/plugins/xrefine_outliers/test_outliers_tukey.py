"""Tukey fences: hinges equal R's fivenum, fences per column, any column flags the row."""

import numpy as np
import pytest

from xrefine.outliers import OutlierDetector
from xrefine_outliers import TukeyDetector, tukey_hinges

# Expected hinges worked out by hand from R's fivenum rule: sort, n4 = floor((n + 3) / 2) / 2,
# lower = mean of the values at 1-based ranks floor(n4), ceil(n4); upper the same at n + 1 - n4.
HAND_CHECKED = [
    # n = 1: n4 = 1 -> both hinges are the value.
    ([4.0], 4.0, 4.0),
    # n = 2: n4 = floor(5/2)/2 = 1 -> ranks 1 and 2.
    ([3.0, 1.0], 1.0, 3.0),
    # n = 3, sorted 1 2 10: n4 = 1.5 -> (1 + 2)/2 and (2 + 10)/2; fivenum(c(1,2,10)) = 1 1.5 2 6 10.
    ([10.0, 1.0, 2.0], 1.5, 6.0),
    # n = 5, sorted 1 3 4 7 9: n4 = 2 -> ranks 2 and 4.
    ([7.0, 1.0, 3.0, 9.0, 4.0], 3.0, 7.0),
    # n = 6, sorted -2 0.5 1 1 3 8: n4 = 2 -> ranks 2 and 5.
    ([0.5, -2.0, 8.0, 3.0, 1.0, 1.0], 0.5, 3.0),
    # n = 7 (1..7): n4 = 2.5 -> (2 + 3)/2 and (5 + 6)/2; fivenum(1:7) = 1 2.5 4 5.5 7.
    (list(range(7, 0, -1)), 2.5, 5.5),
    # n = 8 (1..8): n4 = 2.5 -> 2.5 and (6 + 7)/2; fivenum(1:8) = 1 2.5 4.5 6.5 8.
    ([5.0, 2.0, 8.0, 1.0, 7.0, 3.0, 6.0, 4.0], 2.5, 6.5),
    # n = 9 (1..9): n4 = 3 -> ranks 3 and 7; fivenum(1:9) = 1 3 5 7 9.
    (list(range(1, 10)), 3.0, 7.0),
    # n = 10 (1..10): n4 = 3 -> ranks 3 and 8; fivenum(1:10) = 1 3 5.5 8 10.
    (list(range(10, 0, -1)), 3.0, 8.0),
    # n = 11, sorted 0.1 0.2 ... 1.1: n4 = 3.5 -> (0.3 + 0.4)/2 and (0.8 + 0.9)/2.
    ([0.1 * k for k in (11, 3, 7, 1, 9, 5, 2, 10, 4, 8, 6)], 0.35, 0.85),
]


@pytest.mark.parametrize("values, lower, upper", HAND_CHECKED)
def test_hinges_equal_r_fivenum(values, lower, upper):
    got_lower, got_upper = tukey_hinges(np.array(values)[:, None])
    assert got_lower[0] == pytest.approx(lower, abs=1e-12)
    assert got_upper[0] == pytest.approx(upper, abs=1e-12)


def test_hinges_are_per_column():
    values = np.column_stack([np.arange(1.0, 11.0), -np.arange(1.0, 11.0) * 2])
    lower, upper = tukey_hinges(values)
    np.testing.assert_array_equal(lower, [3.0, -16.0])
    np.testing.assert_array_equal(upper, [8.0, -6.0])


def test_is_an_outlier_detector():
    assert isinstance(TukeyDetector(), OutlierDetector)


def test_fences_are_strict():
    # 1..9 plus one more value at rank 10: hinges 3 and 8, IQR 5, fences -4.5 and 15.5.
    at_fence = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 15.5])[:, None]
    assert not TukeyDetector().detect(at_fence).any()
    beyond = at_fence.copy()
    beyond[-1] = 15.5001
    np.testing.assert_array_equal(TukeyDetector().detect(beyond), [False] * 9 + [True])
    below = np.array([-4.5001, 2, 3, 4, 5, 6, 7, 8, 9, 10])[:, None]
    np.testing.assert_array_equal(TukeyDetector().detect(below), [True] + [False] * 9)


def test_any_column_flags_the_row():
    x = np.column_stack([np.arange(1.0, 11.0), np.arange(1.0, 11.0)])
    x[4, 1] = 100.0
    x[7, 0] = -100.0
    flags = TukeyDetector().detect(x)
    np.testing.assert_array_equal(np.flatnonzero(flags), [4, 7])


def test_multiplier_sets_the_reach():
    # Hinges 3 and 8 (IQR 5): 17 is inside k = 2 (fence 18) and outside k = 1.5 (fence 15.5).
    x = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 17.0])[:, None]
    assert TukeyDetector(1.5).detect(x)[-1]
    assert not TukeyDetector(2.0).detect(x).any()


def test_gaussian_flag_rate():
    # For a normal column the fences sit at +-2.698 sigma: 0.70 % flagged per column.
    x = np.random.default_rng(0).standard_normal((200_000, 1))
    assert TukeyDetector().detect(x).mean() == pytest.approx(0.00698, abs=0.001)


def test_degenerate_inputs():
    assert TukeyDetector().detect(np.zeros((0, 3))).shape == (0,)
    assert not TukeyDetector().detect(np.full((6, 2), 3.0)).any()
    assert not TukeyDetector().detect(np.array([[1.0, 2.0]])).any()


def test_bad_arguments():
    with pytest.raises(ValueError):
        TukeyDetector(-1.0)
    with pytest.raises(ValueError):
        TukeyDetector().detect(np.zeros(5))
