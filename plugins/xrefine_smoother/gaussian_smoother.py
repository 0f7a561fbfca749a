"""The Gaussian smoother of scan-varying refinement (MATH.md 5; DIALS's GaussianSmoother, itself
after Aimless's SmoothedValue).

A parameter that varies along a scan is held as values v_i at sample positions; its value at a
frame t is the average of the (at most three) nearest samples with Gaussian weights,

    p(t) = sum_i w_i(t) v_i / sum_i w_i(t),    w_i(t) = exp(-((z - z_i) / sigma)^2),

z = (t - x0) / spacing the normalised coordinate.  d p(t) / d v_i = w_i(t) / sum_j w_j(t), so the
normalised weights returned by `GaussianSmoother.weights` are also the derivatives.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from xrefine.errors import InputError
from xrefine.models import Scan

from .uniform_smoother import UniformSmoother

__all__ = ["GaussianSmoother", "num_intervals"]

#: samples averaged at any point (DIALS's default; fewer when the smoother has fewer values)
NUM_AVERAGE = 3


def num_intervals(scan: Scan, interval_width_degrees: float = 36.0, absolute_num_intervals: Optional[int] = None) -> int:
    """Number of smoother intervals for a scan (MATH.md 5): `absolute_num_intervals` if given,
    else max(floor(|scan width in degrees| / interval_width_degrees), 1).  A scan shorter than
    one interval therefore gets one interval (two samples)."""
    if absolute_num_intervals is not None:
        if int(absolute_num_intervals) != absolute_num_intervals or absolute_num_intervals < 1:
            raise InputError(
                f"smoother.absolute_num_intervals={absolute_num_intervals!r} must be a whole number >= 1 (or Auto)"
            )
        return int(absolute_num_intervals)
    if not interval_width_degrees > 0:
        raise InputError(f"smoother.interval_width_degrees={interval_width_degrees!r} must be > 0")
    width_deg = abs(scan.oscillation[1]) * scan.num_images
    return max(int(math.floor(width_deg / interval_width_degrees)), 1)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (boost::math::iround, as DIALS)."""
    return np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5)).astype(np.int64)


class GaussianSmoother(UniformSmoother):
    """Gaussian smoothing over the frame range `x_range` = (x0, x1) with `num_intervals`
    intervals (MATH.md 5, exactly as DIALS).

    num_values: 2 for one interval, 3 for two, num_intervals + 2 otherwise.  positions: the
    samples' normalised coordinates, 0, 1, (2) for up to three values, else -0.5, 0.5, ...,
    num_intervals + 0.5 (the outer samples half an interval outside the range).  spacing:
    (x1 - x0) / num_intervals frames.  num_average = min(3, num_values) samples contribute at
    any point, with sigma = 0.65 + 0.05 (num_average - 2).
    """

    def __init__(self, x_range, num_intervals: int):
        super().__init__(x_range, num_intervals)
        n = self.num_intervals
        self.num_values = 2 if n == 1 else 3 if n == 2 else n + 2
        offset = 0.0 if self.num_values < 4 else -0.5
        self.positions = np.arange(self.num_values, dtype=float) + offset
        self.num_average = min(NUM_AVERAGE, self.num_values)
        self.sigma = 0.65 + 0.05 * (self.num_average - 2)

    def window(self, t) -> tuple:
        """(i1, i2) per point: samples i1 <= i < i2 contribute (2 or 3 of them; all samples
        when there are at most three)."""
        return self._window_z(np.atleast_1d(self.normalised(t)))

    def _window_z(self, z: np.ndarray) -> tuple:
        nv, nav = self.num_values, self.num_average
        if nv <= 3:
            return np.zeros(z.shape, dtype=np.int64), np.full(z.shape, nv, dtype=np.int64)
        i1 = _round_half_away(z - 0.5 * nav) + 1
        i2 = i1 + nav
        low = i1 < 0
        i1 = np.where(low, 0, i1)
        i2 = np.where(low, np.maximum(2, i2), i2)  # at least two samples
        high = i2 > nv
        i2 = np.where(high, nv, i2)
        i1 = np.where(high, np.minimum(i1, nv - 2), i1)
        return i1, i2

    def weights(self, t) -> tuple:
        """(indices (n, num_average) int, normalised weights (n, num_average)) at frames t (n,).

        Row r holds the samples contributing at t[r] and w_i / sum_j w_j, which is both the
        smoothing weight and d p(t[r]) / d v_i.  Where a window has only two samples the third
        slot repeats the last index with weight 0.
        """
        z = np.atleast_1d(self.normalised(t))
        i1, i2 = self._window_z(z)
        nav = self.num_average
        slots = i1[:, None] + np.arange(nav)[None, :]
        inside = slots < i2[:, None]
        indices = np.minimum(slots, (i2 - 1)[:, None])
        d2 = ((z[:, None] - self.positions[indices]) / self.sigma) ** 2
        # subtracting the smallest exponent leaves the normalised weights unchanged and keeps
        # them finite far outside the range, where every raw weight would underflow
        d2 -= np.where(inside, d2, np.inf).min(axis=1, keepdims=True)
        w = np.where(inside, np.exp(-d2), 0.0)
        return indices, w / w.sum(axis=1, keepdims=True)
