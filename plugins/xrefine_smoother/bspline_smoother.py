"""A uniform cubic B-spline smoother for scan-varying refinement, an alternative to the Gaussian
smoother (``smoother=bspline``).

Over the frame range (x0, x1) split into n intervals of `spacing` h = (x1 - x0) / n, a parameter
is the cubic spline

    p(t) = sum_j c_j B_j(z),    z = (t - x0) / h,

with n + 3 coefficients c_0 .. c_{n+2} (the knots continue three spacings beyond each end of the
range) and B_j the uniform cubic B-spline centred at z = j - 1.  On the interval i <= z < i + 1
only c_i .. c_{i+3} act, with u = z - i:

    b_0 = (1 - u)^3 / 6,                  b_1 = (3 u^3 - 6 u^2 + 4) / 6,
    b_2 = (-3 u^3 + 3 u^2 + 3 u + 1) / 6, b_3 = u^3 / 6.

They sum to 1 at every t (partition of unity), and the spline reproduces every polynomial of
degree up to three exactly, so a constant, a linear drift or a slow curve of the scan is
represented without ripple (the Gaussian smoother misses even a straight line by ~0.1 % of its
change per interval).  p is twice continuously differentiable; its error for a smooth drift
falls as h^4.  d p(t) / d c_j = B_j(z), so the weights are also the derivatives, as for the
Gaussian smoother.

The coefficients are not the curve's values: at a knot z = k the curve is
(c_k + 4 c_{k+1} + c_{k+2}) / 6.  `positions` (and `sample_frames`) give the centre of each
coefficient's basis function, -1, 0, ..., n + 1 in normalised units: the outermost coefficients
sit a whole interval outside the scan and act only within its first (last) interval, with at most
1/6 of the weight there, so their *support* (support.py) is about 1/24 of an interval's
reflections (the Gaussian smoother's end samples get about 1/6).

Outside the range the end intervals' cubics are continued (the window stays at the first or last
four coefficients), which keeps the partition of unity; the refinement composes only inside.
"""

from __future__ import annotations

import numpy as np

from .uniform_smoother import UniformSmoother

__all__ = ["BSplineSmoother"]


class BSplineSmoother(UniformSmoother):
    """Uniform cubic B-spline over the frame range `x_range` = (x0, x1) with `num_intervals`
    intervals; the same interface as `GaussianSmoother`.

    num_values: num_intervals + 3.  positions: the coefficients' basis-function centres in
    normalised coordinates, -1, 0, ..., num_intervals + 1.  spacing: (x1 - x0) / num_intervals
    frames.  num_average = 4 coefficients act at any point (three at a knot, where the fourth's
    weight is 0).
    """

    #: coefficients acting at any point
    num_average = 4

    def __init__(self, x_range, num_intervals: int):
        super().__init__(x_range, num_intervals)
        n = self.num_intervals
        self.num_values = n + 3
        self.positions = np.arange(self.num_values, dtype=float) - 1.0

    def _interval(self, z: np.ndarray) -> np.ndarray:
        """The interval i (0 <= i < num_intervals) whose cubic holds at z: floor(z), the last
        interval at z = num_intervals, the end intervals beyond the range."""
        return np.clip(np.floor(z), 0, self.num_intervals - 1).astype(np.int64)

    def window(self, t) -> tuple:
        """(i1, i2) per point: coefficients i1 <= i < i2 = i1 + 4 act (windows change at the
        knots, integer normalised coordinates, and move monotonically with t)."""
        i1 = self._interval(np.atleast_1d(self.normalised(t)))
        return i1, i1 + self.num_average

    def weights(self, t) -> tuple:
        """(indices (n, 4) int, weights (n, 4)) at frames t (n,).

        Row r holds the coefficients acting at t[r] and their basis-function values, which sum
        to 1 and are d p(t[r]) / d c_i.
        """
        z = np.atleast_1d(self.normalised(t))
        i = self._interval(z)
        u = z - i
        v = 1.0 - u
        u2, u3 = u * u, u * u * u
        w = np.stack(
            [v * v * v, 3.0 * u3 - 6.0 * u2 + 4.0, -3.0 * u3 + 3.0 * u2 + 3.0 * u + 1.0, u3], axis=1
        ) / 6.0
        indices = i[:, None] + np.arange(self.num_average)[None, :]
        return indices, w
