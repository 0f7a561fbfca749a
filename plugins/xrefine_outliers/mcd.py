"""The MCD outlier detector: rows far from the bulk in robust Mahalanobis distance (MATH.md §8.1).

The location and covariance are the raw Minimum Covariance Determinant estimates (mean and
covariance of the h rows with the smallest covariance determinant, found by FAST-MCD), the
covariance multiplied by the consistency factor and the Pison et al. small-sample factor; there
is no reweighting step.  A row is an outlier when its squared distance exceeds the
`threshold_probability` quantile of chi-square with p degrees of freedom.

Degenerate input, never an error:

* fewer than p + 1 rows: no scatter can be estimated; nothing is flagged and the distances and
  covariance are NaN;
* a constant column carries no information: it is set aside, its covariance row and column are
  zero, and p counts only the other columns;
* at least h rows on a hyperplane (e.g. more than half the rows share the value of a column, or
  the columns are exactly collinear): the MCD determinant is zero ("exact fit").  Rows off the
  plane are outliers (distance infinite); the rows on it are judged by MCD again within the
  plane, whose dimension sets the degrees of freedom of the cut-off;
* if the search finds no usable subset at all, nothing is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrefine.outliers import OutlierDetector

from .fast_mcd import fast_mcd, hyperplane_fit, is_singular
from .mcd_correction import chi2_quantile, consistency_factor, small_sample_factor

__all__ = ["MCDDetector", "MCDEstimate", "subset_size"]


def subset_size(n: int, p: int, alpha: float) -> int:
    """h, the number of rows whose covariance determinant MCD minimises:
    floor(2 n2 - n + 2 (n - n2) alpha) with n2 = floor((n + p + 1) / 2); n2 for alpha = 0.5."""
    n2 = (n + p + 1) // 2
    return int(np.floor(2 * n2 - n + 2 * (n - n2) * alpha))


@dataclass(frozen=True)
class MCDEstimate:
    """Result of `MCDDetector.estimate` for residuals of shape (n, p), in the residuals' units.

    location: (p,) robust mean.
    covariance: (p, p) robust covariance, consistency and small-sample factors applied.
    distances_sq: (n,) squared Mahalanobis distances (inf off an exact-fit hyperplane).
    dof: degrees of freedom of the cut-off (p less constant columns and exact-fit normals).
    cutoff: the chi-square quantile the distances are compared with.
    outliers: (n,) bool, distances_sq > cutoff.
    """

    location: np.ndarray
    covariance: np.ndarray
    distances_sq: np.ndarray
    dof: int
    cutoff: float
    outliers: np.ndarray


class MCDDetector(OutlierDetector):
    """FAST-MCD outlier detector, affine equivariant and deterministic.

    alpha: trimming parameter, 0.5 <= alpha <= 1; h = `subset_size(n, p, alpha)` rows define the
        estimates (alpha = 0.5 gives the highest breakdown point, about 50 %).
    threshold_probability: chi-square probability of the distance cut-off (0.975: 9.348 for p = 3).
    seed: seed of the random starts; the same residuals always give the same flags.
    n_starts: random starts of the search (500 in R&vD and DIALS); fewer is faster but may miss
        the best subset on hard data.
    """

    def __init__(self, alpha: float = 0.5, threshold_probability: float = 0.975, seed: int = 42,
                 n_starts: int = 500):
        if not 0.5 <= alpha <= 1.0:
            raise ValueError(f"MCDDetector: alpha must lie in [0.5, 1], got {alpha}")
        if not 0.0 < threshold_probability < 1.0:
            raise ValueError(
                f"MCDDetector: threshold_probability must lie in (0, 1), got {threshold_probability}"
            )
        if n_starts < 1:
            raise ValueError(f"MCDDetector: n_starts must be at least 1, got {n_starts}")
        self.alpha = alpha
        self.threshold_probability = threshold_probability
        self.seed = seed
        self.n_starts = n_starts

    def detect(self, residuals: np.ndarray) -> np.ndarray:
        """residuals: (n, p) finite floats (the caller removes NaNs).  Returns a bool array (n,),
        True for outliers."""
        return self.estimate(residuals).outliers

    def estimate(self, residuals: np.ndarray) -> MCDEstimate:
        """The robust location, covariance and distances behind `detect`, for residuals (n, p)."""
        x = np.asarray(residuals, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"MCDDetector: residuals must be an (n, p) array, got shape {x.shape}")
        n, p = x.shape
        if n == 0:
            cutoff = chi2_quantile(self.threshold_probability, p) if p else 0.0
            nothing = np.zeros(0)
            return MCDEstimate(np.full(p, np.nan), np.full((p, p), np.nan), nothing, p, cutoff, nothing > 0)
        varying = np.flatnonzero(x.max(axis=0) > x.min(axis=0))
        # Robust standardisation changes nothing (MCD is affine equivariant) but keeps the search's
        # expanded quadratic forms and tolerances on a unit scale whatever the columns' units.
        centre = np.median(x[:, varying], axis=0)
        scale = np.median(np.abs(x[:, varying] - centre), axis=0)
        no_mad = scale == 0.0
        if no_mad.any():
            scale[no_mad] = x[:, varying[no_mad]].std(axis=0)
        z = (x[:, varying] - centre) / scale

        location_z, covariance_z, distances_sq, dof = self._estimate_standardised(z)

        location = x[0].copy()
        location[varying] = centre + scale * location_z
        covariance = np.zeros((p, p))
        covariance[np.ix_(varying, varying)] = covariance_z * np.outer(scale, scale)
        cutoff = chi2_quantile(self.threshold_probability, dof) if dof > 0 else 0.0
        return MCDEstimate(location, covariance, distances_sq, dof, cutoff, distances_sq > cutoff)

    def _estimate_standardised(self, z: np.ndarray):
        n, p = z.shape
        if p == 0:
            return np.zeros(0), np.zeros((0, 0)), np.zeros(n), 0
        if n < p + 1:
            location = z.mean(axis=0)
            return location, np.full((p, p), np.nan), np.full(n, np.nan), p
        h = subset_size(n, p, self.alpha)
        search = fast_mcd(z, h, self.seed, self.n_starts)
        if search is None:
            return np.median(z, axis=0), np.full((p, p), np.nan), np.full(n, np.nan), p
        if not search.exact_fit:
            support = z[search.support]
            location = support.mean(axis=0)
            covariance = np.cov(support, rowvar=False).reshape(p, p)
            if not is_singular(covariance):
                factor = consistency_factor(p, h, n)
                if h < n:
                    factor *= small_sample_factor(p, n, self.alpha)
                covariance *= factor
                return location, covariance, _squared_distances(z, location, covariance), p
            search = hyperplane_fit(z, location, covariance)
        return self._within_plane(z, search)

    def _within_plane(self, z: np.ndarray, fit):
        on_plane, origin, basis = fit.support, fit.origin, fit.basis
        in_plane = (z[on_plane] - origin) @ basis
        location_in, covariance_in, distances_in, dof = self._estimate_standardised(in_plane)
        distances_sq = np.full(z.shape[0], np.inf)
        distances_sq[on_plane] = distances_in
        return origin + basis @ location_in, basis @ covariance_in @ basis.T, distances_sq, dof


def _squared_distances(z: np.ndarray, location: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    whitening = np.linalg.inv(np.linalg.cholesky(covariance))
    whitened = (z - location) @ whitening.T
    return np.einsum("ij,ij->i", whitened, whitened)
