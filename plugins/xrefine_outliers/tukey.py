"""Tukey's fences on each residual column (MATH.md §8.1).

A value is an outlier when it lies below Q1 - k IQR or above Q3 + k IQR, with Q1 and Q3 the
Tukey hinges (the lower and upper hinges of R's `fivenum`) and IQR = Q3 - Q1; a row is an outlier
when any of its columns is.
"""

from __future__ import annotations

import numpy as np

from xrefine.outliers import OutlierDetector

__all__ = ["TukeyDetector", "tukey_hinges"]


def tukey_hinges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper Tukey hinges of each column of `values` (n, d), n >= 1, as R's `fivenum`.

    With the column sorted and 1-based ranks, the lower hinge is the mean of the values at ranks
    floor(m) and ceil(m) with m = floor((n + 3) / 2) / 2, the upper hinge the same at n + 1 - m:
    the medians of the lower and upper halves, each half including the median when n is odd.
    """
    x = np.asarray(values, dtype=float)
    n = x.shape[0]
    m = ((n + 3) // 2) / 2
    lower_ranks = (int(np.floor(m)) - 1, int(np.ceil(m)) - 1)
    upper_ranks = (n - int(np.ceil(m)), n - int(np.floor(m)))
    ranks = sorted(set(lower_ranks + upper_ranks))
    ordered = np.partition(x, ranks, axis=0)
    lower = 0.5 * (ordered[lower_ranks[0]] + ordered[lower_ranks[1]])
    upper = 0.5 * (ordered[upper_ranks[0]] + ordered[upper_ranks[1]])
    return lower, upper


class TukeyDetector(OutlierDetector):
    """Per-column Tukey fences: outside [Q1 - k IQR, Q3 + k IQR] with k = `iqr_multiplier`.

    Not affine equivariant: it judges each column on its own, so correlated residuals are seen
    only through their marginals.  Deterministic; a constant column flags nothing.
    """

    def __init__(self, iqr_multiplier: float = 1.5):
        if not iqr_multiplier >= 0.0:
            raise ValueError(f"TukeyDetector: iqr_multiplier must be >= 0, got {iqr_multiplier}")
        self.iqr_multiplier = iqr_multiplier

    def detect(self, residuals: np.ndarray) -> np.ndarray:
        """residuals: (n, d) finite floats (the caller removes NaNs).  Returns a bool array (n,),
        True where any column lies outside its fences."""
        x = np.asarray(residuals, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"TukeyDetector: residuals must be an (n, d) array, got shape {x.shape}")
        if x.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        lower, upper = tukey_hinges(x)
        reach = self.iqr_multiplier * (upper - lower)
        return ((x < lower - reach) | (x > upper + reach)).any(axis=1)
