"""What every smoother over a scan shares: uniform intervals over a frame range, sample values
at fixed positions, and evaluation through sparse per-frame weights."""

from __future__ import annotations

import numpy as np


class UniformSmoother:
    """Base of the smoothers: `num_intervals` equal intervals over `x_range` (frames).

    Subclasses set `num_values`, `positions` (normalised sample coordinates) and
    `num_average`, and implement `weights(t) -> (indices (n, k), weights (n, k))` and
    `window(t)`; the weights of a frame sum to 1 and are the derivatives of the smoothed value
    with respect to the sample values.
    """

    def __init__(self, x_range, num_intervals: int):
        x0, x1 = (float(x) for x in x_range)
        name = type(self).__name__
        if int(num_intervals) != num_intervals or num_intervals < 1:
            raise ValueError(f"{name} needs num_intervals >= 1, got {num_intervals!r}")
        if not x1 > x0:
            raise ValueError(f"{name} needs x_range[1] > x_range[0], got {x_range!r}")
        self.x_range = (x0, x1)
        self.num_intervals = int(num_intervals)
        self.spacing = (x1 - x0) / self.num_intervals

    def normalised(self, t) -> np.ndarray:
        """z = (t - x0) / spacing."""
        return (np.asarray(t, dtype=float) - self.x_range[0]) / self.spacing

    def dense_weights(self, t) -> np.ndarray:
        """The weights as a dense (n, num_values) matrix (zero outside the window)."""
        indices, w = self.weights(t)
        out = np.zeros((len(indices), self.num_values))
        np.add.at(out, (np.arange(len(indices))[:, None], indices), w)
        return out

    def value(self, t, sample_values) -> np.ndarray:
        """Smoothed values at frames t (n,): (n,) for sample_values (num_values,), or (n, ...)
        for sample_values (num_values, ...)."""
        v = np.asarray(sample_values, dtype=float)
        if v.shape[0] != self.num_values:
            raise ValueError(f"expected {self.num_values} sample values, got {v.shape[0]}")
        indices, w = self.weights(t)
        return np.einsum("na,na...->n...", w, v[indices])

    def sample_frames(self) -> np.ndarray:
        """The sample positions in frames: x0 + positions * spacing."""
        return self.x_range[0] + self.positions * self.spacing
