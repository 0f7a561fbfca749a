"""Sigma clipping about the median, with the scale from the median absolute deviation.

For each residual column c (X mm, Y mm, phi rad for rotation scans) the centre is the median
m_c and the scale is sigma_c = 1.4826 * MAD_c, where MAD_c = median(|r_c - m_c|); 1.4826 makes
sigma_c estimate the standard deviation of a normal distribution.  A row is an outlier when
|r_c - m_c| > k * sigma_c in any column.  Each column is judged on its own scale, so the units
of the columns do not matter.
"""

from __future__ import annotations

import numpy as np

from xrefine.outliers import OutlierDetector

__all__ = ["SigmaClipDetector", "MAD_TO_SIGMA"]

#: 1 / Phi^-1(3/4): the MAD of a normal distribution times this is its standard deviation
MAD_TO_SIGMA = 1.4826


class SigmaClipDetector(OutlierDetector):
    """Flags rows more than `k` robust standard deviations from the column median in any column.

    A column whose MAD is zero (more than half its values equal) has no usable scale and flags
    nothing.  Deterministic; one pass of NumPy reductions, no loop over rows.
    """

    def __init__(self, k: float = 5.0):
        if not (np.isfinite(k) and k > 0.0):
            raise ValueError(f"SigmaClipDetector: k must be a positive number, got {k!r}")
        self.k = float(k)

    def detect(self, residuals: np.ndarray) -> np.ndarray:
        """residuals: (n, d) finite floats.  Returns a bool array (n,), True for outliers."""
        x = np.asarray(residuals, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"SigmaClipDetector: residuals must be an (n, d) array, got shape {x.shape}")
        if x.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        deviation = np.abs(x - np.median(x, axis=0))
        sigma = MAD_TO_SIGMA * np.median(deviation, axis=0)
        return ((deviation > self.k * sigma) & (sigma > 0.0)).any(axis=1)
