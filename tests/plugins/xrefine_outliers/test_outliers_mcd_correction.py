"""Consistency and Pison et al. small-sample factors of the raw MCD covariance."""

import math

import numpy as np
import pytest
from scipy import stats

from xrefine_outliers.mcd_correction import chi2_quantile, consistency_factor, small_sample_factor


@pytest.mark.parametrize("p, h, n", [(1, 51, 100), (2, 102, 201), (3, 102, 200), (3, 750, 1000)])
def test_consistency_factor_definition(p, h, n):
    q = h / n
    expected = q / stats.chi2.cdf(stats.chi2.ppf(q, p), p + 2)
    assert consistency_factor(p, h, n) == pytest.approx(expected, rel=1e-10)


def test_consistency_factor_is_one_without_trimming():
    assert consistency_factor(3, 80, 80) == 1.0


def test_consistency_factor_makes_the_central_half_consistent():
    # The covariance of the half of a large normal sample nearest the centre, times c, is ~ I.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400_000, 3))
    central = x[np.argsort((x**2).sum(axis=1))[:200_000]]
    scaled = np.cov(central, rowvar=False) * consistency_factor(3, 200_000, 400_000)
    np.testing.assert_allclose(np.diag(scaled), 1.0, atol=0.01)


def test_chi2_quantile():
    assert chi2_quantile(0.975, 3) == pytest.approx(stats.chi2.ppf(0.975, 3), rel=1e-12)
    assert chi2_quantile(0.975, 2) == pytest.approx(7.3778, abs=1e-4)


@pytest.mark.parametrize(
    "p, n, a, b",
    [(1, 100, 0.262024211897096, 0.604756680630497), (2, 100, 0.673292623522027, 0.691365864961895),
     (2, 3000, 0.673292623522027, 0.691365864961895)],
)
def test_small_sample_factor_low_dimension(p, n, a, b):
    assert small_sample_factor(p, n, 0.5) == pytest.approx(1.0 / (1.0 - math.exp(a) / n**b), rel=1e-12)


@pytest.mark.parametrize(
    "p, alpha, c, e, q",
    [(3, 0.5, -1.42764571687802, 1.26263336932151, 2), (3, 0.5, -1.06141115981725, 1.28907991440387, 3),
     (5, 0.5, -1.42764571687802, 1.26263336932151, 2), (4, 0.875, -0.294241208320834, 1.09649329149811, 3)],
)
def test_small_sample_factor_high_dimension_passes_its_anchors(p, alpha, c, e, q):
    # For p >= 3, Pison et al. fix 1 - f(n) = -c / p**e at n = q p**2 (q = 2, 3).
    n = q * p * p
    assert small_sample_factor(p, n, alpha) == pytest.approx(1.0 / (1.0 + c / p**e), rel=1e-10)


def test_small_sample_factor_interpolates_in_alpha():
    f500 = 1.0 / small_sample_factor(2, 200, 0.5)
    f875 = 1.0 / small_sample_factor(2, 200, 0.875)
    assert f875 == pytest.approx(1.0 - math.exp(0.446537815635445) / 200**1.06690782995919)
    assert 1.0 / small_sample_factor(2, 200, 0.6875) == pytest.approx(0.5 * (f500 + f875))
    assert small_sample_factor(2, 200, 1.0) == pytest.approx(1.0)


def test_small_sample_factor_decreases_to_one():
    factors = [small_sample_factor(3, n, 0.5) for n in (20, 50, 200, 1000, 100_000)]
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert factors[0] > 1.3 and factors[-1] == pytest.approx(1.0, abs=0.01)


def test_small_sample_factor_outside_its_fit_is_one():
    assert small_sample_factor(3, 5, 0.5) == 1.0  # f(5) = 0.003: a factor of 350
    assert small_sample_factor(3, 4, 0.5) == 1.0  # f(4) < 0


def test_small_sample_factor_rejects_bad_alpha():
    with pytest.raises(ValueError):
        small_sample_factor(3, 100, 0.3)
