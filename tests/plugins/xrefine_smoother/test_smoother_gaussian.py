"""The Gaussian smoother against MATH.md 5 and 10.1 (DIALS's GaussianSmoother)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xrefine.errors import InputError
from xrefine.models import Scan

from xrefine_smoother import GaussianSmoother, num_intervals


def reference_value_weights(smoother: GaussianSmoother, t: float, values) -> tuple:
    """A literal scalar transcription of MATH.md 5: (value, {i: d value / d v_i})."""
    z = (t - smoother.x_range[0]) / smoother.spacing
    nv, nav = smoother.num_values, smoother.num_average
    if nv <= 3:
        i1, i2 = 0, nv
    else:
        x = z - nav / 2
        i1 = int(math.floor(x + 0.5) if x >= 0 else math.ceil(x - 0.5)) + 1
        i2 = i1 + nav
        if i1 < 0:
            i1, i2 = 0, max(2, i2)
        if i2 > nv:
            i2, i1 = nv, min(i1, nv - 2)
    w = {i: math.exp(-(((z - smoother.positions[i]) / smoother.sigma) ** 2)) for i in range(i1, i2)}
    total = sum(w.values())
    return sum(w[i] * values[i] for i in w) / total, {i: wi / total for i, wi in w.items()}


def test_math_example_range_1_100_five_intervals():
    s = GaussianSmoother((1, 100), 5)
    assert s.num_values == 7
    assert np.allclose(s.positions, np.arange(-0.5, 6.0, 1.0))
    assert s.spacing == pytest.approx(19.8)
    assert s.num_average == 3
    assert s.sigma == pytest.approx(0.70)
    assert np.allclose(s.sample_frames(), 1 + 19.8 * np.arange(-0.5, 6.0, 1.0))


@pytest.mark.parametrize("n, nv, positions, sigma", [(1, 2, [0, 1], 0.65), (2, 3, [0, 1, 2], 0.70), (3, 5, [-0.5, 0.5, 1.5, 2.5, 3.5], 0.70)])
def test_small_numbers_of_intervals(n, nv, positions, sigma):
    s = GaussianSmoother((0, 10), n)
    assert s.num_values == nv
    assert np.allclose(s.positions, positions)
    assert s.sigma == pytest.approx(sigma)
    if nv <= 3:
        i1, i2 = s.window(np.linspace(-3, 13, 9))
        assert np.all(i1 == 0) and np.all(i2 == nv), "with up to three values every sample contributes"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 20])
def test_matches_scalar_reference_including_half_integer_windows(n):
    s = GaussianSmoother((1, 100), n)
    values = np.random.default_rng(n).normal(size=s.num_values)
    # every exact half-integer z (where the window rounding ties) and random points, in and
    # beyond the range
    z = np.concatenate([np.arange(-2, n + 2.5, 0.5), np.random.default_rng(0).uniform(-1, n + 1, 50)])
    t = 1 + z * s.spacing
    dense = s.dense_weights(t)
    got = s.value(t, values)
    for r, tr in enumerate(t):
        value, w = reference_value_weights(s, tr, values)
        assert got[r] == pytest.approx(value, rel=1e-13, abs=1e-13)
        expect = np.zeros(s.num_values)
        for i, wi in w.items():
            expect[i] = wi
        assert np.allclose(dense[r], expect, rtol=1e-13, atol=1e-15)


def test_window_edges():
    s = GaussianSmoother((0, 50), 5)  # 7 values
    i1, i2 = s.window(s.x_range[0] + s.spacing * np.array([0.0, 0.1, 1.0, 2.7, 4.9, 5.0]))
    # ties round away from zero: at z = 0, round(-1.5) = -2, so only samples 0 and 1; at z = 1,
    # round(-0.5) = -1 keeps the lower window
    assert list(zip(i1, i2)) == [(0, 2), (0, 3), (0, 3), (2, 5), (4, 7), (5, 7)]


def test_single_and_multi_point_evaluations_identical():
    s = GaussianSmoother((0, 7200), 20)
    values = np.random.default_rng(3).normal(size=(s.num_values, 2))
    t = np.linspace(0, 7200, 301)
    many = s.value(t, values)
    single = np.array([s.value([x], values)[0] for x in t])
    assert np.array_equal(many, single)
    idx, w = s.weights(t)
    for r, x in enumerate(t):
        i1, w1 = s.weights([x])
        assert np.array_equal(i1[0], idx[r]) and np.array_equal(w1[0], w[r])


def test_weights_sum_to_one_and_are_the_derivatives():
    s = GaussianSmoother((1, 100), 5)
    t = np.linspace(-10, 110, 241)
    _, w = s.weights(t)
    assert np.allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    assert np.all(w >= 0)
    values = np.random.default_rng(5).normal(size=s.num_values)
    h = 1e-6
    fd = np.stack([(s.value(t, values + h * e) - s.value(t, values - h * e)) / (2 * h) for e in np.eye(s.num_values)], axis=1)
    assert np.allclose(fd, s.dense_weights(t), atol=1e-9)
    assert np.allclose(fd.sum(axis=1), 1.0, atol=1e-9), "sum_i dp/dv_i = 1"


def test_constant_samples_give_a_constant_everywhere_even_far_outside():
    s = GaussianSmoother((0, 100), 10)
    t = np.array([-1e4, -50, 0, 33.3, 100, 1e4])
    assert np.allclose(s.value(t, np.full(s.num_values, 2.5)), 2.5, rtol=0, atol=1e-14)
    assert np.all(np.isfinite(s.dense_weights(t)))


def test_at_most_three_samples_per_point():
    s = GaussianSmoother((0, 7200), 20)
    dense = s.dense_weights(np.linspace(0, 7200, 7201))
    assert (np.count_nonzero(dense, axis=1) <= 3).all()
    assert (np.count_nonzero(dense, axis=1) >= 2).all()


def test_invalid_construction():
    with pytest.raises(ValueError):
        GaussianSmoother((0, 10), 0)
    with pytest.raises(ValueError):
        GaussianSmoother((5, 5), 2)


@pytest.mark.parametrize(
    "n_images, width, interval, absolute, expect",
    [(7200, 0.1, 36.0, None, 20), (100, 0.1, 36.0, None, 1), (360, 0.1, 36.0, None, 1), (361, 0.1, 36.0, None, 1),
     (720, 0.1, 36.0, None, 2), (900, -0.2, 36.0, None, 5), (7200, 0.1, 36.0, 7, 7), (50, 1.0, 9.0, None, 5)],
)
def test_num_intervals(n_images, width, interval, absolute, expect):
    scan = Scan(image_range=(1, n_images), oscillation=(10.0, width))
    assert num_intervals(scan, interval, absolute) == expect


def test_num_intervals_errors_name_the_option():
    scan = Scan(image_range=(1, 100), oscillation=(0.0, 0.1))
    with pytest.raises(InputError, match="smoother.interval_width_degrees"):
        num_intervals(scan, 0.0)
    with pytest.raises(InputError, match="smoother.absolute_num_intervals"):
        num_intervals(scan, 36.0, 0)
