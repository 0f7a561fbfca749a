"""Factors that turn the raw MCD scatter into a consistent, small-sample-unbiased covariance.

The raw MCD scatter is the covariance of the h most concentrated rows, so it underestimates the
covariance of the whole (normal) population.  Two factors multiply it (MATH.md §8.1):

* the consistency factor of Croux & Haesbroeck (1999), exact for n -> infinity;
* the finite-sample factor of Pison, Van Aelst & Willems (2002, Metrika 55, 111-123), fitted by
  them to simulations as ``1 / f(n)`` with ``f(n) = 1 - exp(a) / n**b``, for the two
  trimming levels alpha = 0.5 and 0.875 and linearly interpolated in between.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammainc, gammaincinv

__all__ = ["chi2_quantile", "consistency_factor", "small_sample_factor"]

# Pison et al. (a, b) of f(n) = 1 - exp(a) / n**b for p = 1 and p = 2, keyed by alpha.
_AB_LOW_P = {
    0.5: {1: (0.262024211897096, 0.604756680630497), 2: (0.673292623522027, 0.691365864961895)},
    0.875: {1: (-0.351584646688712, 1.01646567502486), 2: (0.446537815635445, 1.06690782995919)},
}
# For p >= 3 Pison et al. model 1 - f at n = q * p**2 as -c / p**e for q = 2 and q = 3; each row
# is (c, e, q).  Those two points fix (a, b) for the given p.
_CEQ_HIGH_P = {
    0.5: ((-1.42764571687802, 1.26263336932151, 2), (-1.06141115981725, 1.28907991440387, 3)),
    0.875: ((-0.455179464070565, 1.11192541278794, 2), (-0.294241208320834, 1.09649329149811, 3)),
}
# Where the fitted f(n) is this small (n of a handful of rows) the fit is meaningless; LIBRA and
# DIALS then fall back to no correction, and so do we.
_LARGEST_SENSIBLE_FACTOR = 50.0


def chi2_quantile(probability: float, dof: int) -> float:
    """The `probability` quantile of the chi-square distribution with `dof` degrees of freedom."""
    return float(2.0 * gammaincinv(0.5 * dof, probability))


def consistency_factor(p: int, h: int, n: int) -> float:
    """Factor making the covariance of the h most central of n rows consistent at the normal model:
    (h/n) / P(chi2_{p+2} <= chi2_{p, h/n}).  Equal to 1 when h = n."""
    q = h / n
    if q >= 1.0:
        return 1.0
    half_quantile = gammaincinv(0.5 * p, q)
    return float(q / gammainc(0.5 * p + 1.0, half_quantile))


def _fit_ab(p: int, alpha: float) -> tuple[float, float]:
    if p <= 2:
        return _AB_LOW_P[alpha][p]
    rows = _CEQ_HIGH_P[alpha]
    design = np.array([[1.0, -math.log(q * p * p)] for _, _, q in rows])
    target = np.array([math.log(-c / p**e) for c, e, _ in rows])
    a, b = np.linalg.solve(design, target)
    return float(a), float(b)


def _f(p: int, n: int, alpha: float) -> float:
    a, b = _fit_ab(p, alpha)
    return 1.0 - math.exp(a) / n**b


def small_sample_factor(p: int, n: int, alpha: float) -> float:
    """Pison et al. finite-sample factor for the raw MCD covariance of n rows in p dimensions with
    trimming parameter alpha (0.5 <= alpha <= 1).  Returns 1 when the fitted formula leaves its
    sensible range (factor not in (0, 50]), which happens only for a few rows per dimension."""
    if not 0.5 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0.5, 1], got {alpha}")
    f500, f875 = _f(p, n, 0.5), _f(p, n, 0.875)
    if alpha <= 0.875:
        f = f500 + (f875 - f500) * (alpha - 0.5) / 0.375
    else:
        f = f875 + (1.0 - f875) * (alpha - 0.875) / 0.125
    if f < 1.0 / _LARGEST_SENSIBLE_FACTOR:
        return 1.0
    return 1.0 / f
