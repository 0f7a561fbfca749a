"""MCD detector on correlated anisotropic Gaussian residuals with planted gross outliers."""

import numpy as np
import pytest

from xrefine.outliers import OutlierDetector
from xrefine_outliers import MCDDetector
from xrefine_outliers.mcd import subset_size

# Residual-like scales (mm, mm, rad), strongly correlated.
FACTOR = np.array([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [0.3, -0.2, 0.1]]) * np.array([[0.05], [0.08], [2e-4]])
TRUE_MEAN = np.array([0.01, -0.02, 1e-4])
TRUE_COV = FACTOR @ FACTOR.T


def residuals(n, seed, outlier_fraction=0.01):
    """n rows of N(TRUE_MEAN, TRUE_COV); the first 1 % replaced by points uniform in +-20 sigma
    (in the whitened frame).  Returns the rows and the planted mask."""
    rng = np.random.default_rng(seed)
    x = TRUE_MEAN + rng.standard_normal((n, 3)) @ FACTOR.T
    planted = np.zeros(n, dtype=bool)
    planted[: max(1, int(n * outlier_fraction))] = True
    x[planted] = TRUE_MEAN + rng.uniform(-20.0, 20.0, (planted.sum(), 3)) @ FACTOR.T
    return x, planted


def whitened(vector_or_matrix):
    inverse = np.linalg.inv(FACTOR)
    if vector_or_matrix.ndim == 1:
        return inverse @ vector_or_matrix
    return inverse @ vector_or_matrix @ inverse.T


def test_is_an_outlier_detector():
    assert isinstance(MCDDetector(), OutlierDetector)


def test_cutoffs_from_math_note():
    x, _ = residuals(500, 0)
    assert MCDDetector().estimate(x).cutoff == pytest.approx(9.348, abs=1e-3)
    assert MCDDetector().estimate(x[:, :2]).cutoff == pytest.approx(7.378, abs=1e-3)


def test_subset_size():
    assert subset_size(200, 3, 0.5) == 102  # floor((200 + 3 + 1) / 2)
    assert subset_size(201, 2, 0.5) == 102
    assert subset_size(10, 2, 0.75) == 8  # n2 = 6: floor(12 - 10 + 2 * 4 * 0.75)
    assert subset_size(57, 3, 1.0) == 57


@pytest.mark.parametrize("n, seed", [(200, 1), (1000, 2), (2000, 3), (20_000, 4)])
def test_planted_outliers_are_found(n, seed):
    x, planted = residuals(n, seed)
    flags = MCDDetector().detect(x)
    assert flags.dtype == bool and flags.shape == (n,)
    assert flags[planted].mean() >= 0.95


@pytest.mark.parametrize("n, seed", [(2000, 3), (20_000, 4)])
def test_false_positive_rate_near_nominal(n, seed):
    x, planted = residuals(n, seed)
    rate = MCDDetector().detect(x)[~planted].mean()
    assert 0.01 <= rate <= 0.045


def test_false_positive_rate_small_n():
    # At n = 200 the raw MCD (no reweighting, as specified) is noisy: single data sets range
    # from 0.5 % to 13 % and the mean is about 5 %, a known property of raw-MCD distances with a
    # chi-square cut-off (Hardin & Rocke 2005), so average several data sets.
    rates = []
    for seed in range(10):
        x, planted = residuals(200, 100 + seed)
        rates.append(MCDDetector().detect(x)[~planted].mean())
    assert 0.01 <= np.mean(rates) <= 0.08


@pytest.mark.parametrize(
    "n, seed, location_tolerance, eigenvalue_range",
    [(200, 1, 0.6, (0.3, 3.0)), (2000, 3, 0.25, (0.65, 1.5)), (20_000, 4, 0.06, (0.85, 1.2))],
)
def test_estimates_close_to_truth(n, seed, location_tolerance, eigenvalue_range):
    x, _ = residuals(n, seed)
    estimate = MCDDetector().estimate(x)
    # Compare in the frame where the truth is N(0, I): location error in standard deviations,
    # covariance through the eigenvalues of the whitened estimate.
    assert np.linalg.norm(whitened(estimate.location - TRUE_MEAN)) < location_tolerance
    eigenvalues = np.linalg.eigvalsh(whitened(estimate.covariance))
    assert eigenvalue_range[0] < eigenvalues.min() and eigenvalues.max() < eigenvalue_range[1]


@pytest.mark.parametrize("n, seed", [(200, 5), (2000, 6), (20_000, 7)])
def test_affine_equivariance(n, seed):
    x, _ = residuals(n, seed)
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((3, 3))
    shift = rng.standard_normal(3) * 100.0
    before = MCDDetector().estimate(x)
    after = MCDDetector().estimate(x @ matrix.T + shift)
    np.testing.assert_array_equal(before.outliers, after.outliers)
    np.testing.assert_allclose(after.distances_sq, before.distances_sq, rtol=1e-7)
    np.testing.assert_allclose(after.location, matrix @ before.location + shift, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(after.covariance, matrix @ before.covariance @ matrix.T, rtol=1e-7, atol=1e-12)


def test_column_units_do_not_matter():
    x, _ = residuals(3000, 8)
    np.testing.assert_array_equal(
        MCDDetector().detect(x), MCDDetector().detect(x * np.array([1e3, 1e-3, 180 / np.pi]))
    )


@pytest.mark.parametrize("n", [300, 5000])
def test_deterministic(n):
    x, _ = residuals(n, 9)
    first = MCDDetector(seed=7).estimate(x)
    second = MCDDetector(seed=7).estimate(x.copy())
    np.testing.assert_array_equal(first.outliers, second.outliers)
    np.testing.assert_array_equal(first.covariance, second.covariance)
    detector = MCDDetector()
    np.testing.assert_array_equal(detector.detect(x), detector.detect(x))


def test_other_seed_finds_the_same_outliers():
    x, planted = residuals(2000, 10)
    for seed in (0, 1, 2):
        assert MCDDetector(seed=seed).detect(x)[planted].all()


def test_detect_matches_estimate():
    x, _ = residuals(700, 11)
    estimate = MCDDetector().estimate(x)
    np.testing.assert_array_equal(MCDDetector().detect(x), estimate.outliers)
    np.testing.assert_array_equal(estimate.outliers, estimate.distances_sq > estimate.cutoff)
    assert estimate.dof == 3


def test_breakdown_with_many_outliers():
    # 40 % of the rows in a far cluster: the MCD still describes the 60 % majority.
    x, _ = residuals(1000, 12, outlier_fraction=0.0)
    x[:400] = x[:400] * 0.5 + 30.0 * np.sqrt(np.diag(TRUE_COV))
    flags = MCDDetector().detect(x)
    assert flags[:400].all()
    assert flags[400:].mean() < 0.1


def test_few_starts_still_work():
    x, planted = residuals(2000, 13)
    assert MCDDetector(n_starts=20).detect(x)[planted].all()


def test_bad_arguments():
    for kwargs in ({"alpha": 0.4}, {"alpha": 1.1}, {"threshold_probability": 1.0}, {"n_starts": 0}):
        with pytest.raises(ValueError):
            MCDDetector(**kwargs)
    with pytest.raises(ValueError):
        MCDDetector().detect(np.zeros(10))
