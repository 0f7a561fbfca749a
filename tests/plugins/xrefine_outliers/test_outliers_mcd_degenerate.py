"""MCD on degenerate residuals: too few rows, constant columns, exact fits.  Never an exception."""

import numpy as np
import pytest

from xrefine_outliers import MCDDetector


def gaussian(n, p, seed):
    return np.random.default_rng(seed).standard_normal((n, p))


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_fewer_rows_than_p_plus_one_flag_nothing(n):
    estimate = MCDDetector().estimate(gaussian(n, 3, 0) * 5.0)
    assert estimate.outliers.shape == (n,)
    assert not estimate.outliers.any()


def test_too_few_rows_give_nan_distances():
    estimate = MCDDetector().estimate(gaussian(3, 3, 1))
    assert np.isnan(estimate.distances_sq).all()
    assert np.isnan(estimate.covariance).all()


def test_p_plus_one_rows_use_the_classical_estimate():
    x = gaussian(4, 3, 2)
    estimate = MCDDetector().estimate(x)
    np.testing.assert_allclose(estimate.location, x.mean(axis=0))
    np.testing.assert_allclose(estimate.covariance, np.cov(x, rowvar=False))
    assert not estimate.outliers.any()


def test_constant_column_is_set_aside():
    x = gaussian(500, 3, 3)
    x[:, 1] = 0.25
    x[:5, [0, 2]] += 40.0
    estimate = MCDDetector().estimate(x)
    assert estimate.dof == 2
    assert estimate.location[1] == 0.25
    np.testing.assert_array_equal(estimate.covariance[1], 0.0)
    np.testing.assert_array_equal(estimate.covariance[:, 1], 0.0)
    assert estimate.outliers[:5].all()
    assert estimate.outliers[5:].mean() < 0.06
    # Same flags as without the column: it carries no information.
    np.testing.assert_array_equal(estimate.outliers, MCDDetector().detect(x[:, [0, 2]]))


def test_all_rows_identical():
    estimate = MCDDetector().estimate(np.full((50, 3), 1.5))
    assert estimate.dof == 0
    assert not estimate.outliers.any()
    np.testing.assert_array_equal(estimate.location, 1.5)


def test_collinear_columns_reduce_the_dimension():
    # All clean rows on the plane z = 2x - y + 1; five rows pushed off it.
    xy = gaussian(400, 2, 4)
    x = np.column_stack([xy, 2 * xy[:, 0] - xy[:, 1] + 1.0])
    x[:5, 2] += 10.0
    estimate = MCDDetector().estimate(x)
    assert estimate.dof == 2
    assert np.isinf(estimate.distances_sq[:5]).all() and estimate.outliers[:5].all()
    assert np.isfinite(estimate.distances_sq[5:]).all()
    assert estimate.outliers[5:].mean() < 0.1
    assert abs(np.linalg.det(estimate.covariance)) < 1e-12


def test_exact_fit_of_a_majority():
    # 70 % of the rows share one value of column 0: the MCD determinant is zero, rows off that
    # plane are outliers and the others are judged within it.
    x = gaussian(600, 3, 5)
    x[:420, 0] = 0.0
    estimate = MCDDetector().estimate(x)
    assert estimate.dof == 2
    assert estimate.outliers[420:].all()
    assert estimate.outliers[:420].mean() < 0.1


def test_majority_of_identical_rows():
    x = np.zeros((300, 3))
    x[:20] = gaussian(20, 3, 6) + 3.0
    estimate = MCDDetector().estimate(x)
    assert estimate.outliers[:20].all()
    assert not estimate.outliers[20:].any()


def test_many_duplicated_rows_in_a_large_job():
    # Repeated rows make many random starts singular: they must be grown, not crash.  (With only
    # 50 distinct rows the estimate is that of 50 points, so many rows may be flagged.)
    base = gaussian(50, 3, 7)
    which = np.random.default_rng(8).integers(0, 50, 3000)
    flags = MCDDetector().detect(base[which])
    assert flags.shape == (3000,)
    for row in range(50):
        assert np.unique(flags[which == row]).size <= 1


def test_one_column():
    x = gaussian(300, 1, 9)
    x[:3] += 25.0
    estimate = MCDDetector().estimate(x)
    assert estimate.dof == 1
    assert estimate.outliers[:3].all()
    assert estimate.outliers[3:].mean() < 0.08


def test_discrete_residuals_without_a_majority_value():
    # Whole-number residuals (no value held by half the rows) behave like continuous ones.
    x = np.round(gaussian(2000, 3, 10) * 2.0)
    x[:10] = 40.0
    estimate = MCDDetector().estimate(x)
    assert estimate.dof == 3
    assert estimate.outliers[:10].all()
    assert estimate.outliers[10:].mean() < 0.1
