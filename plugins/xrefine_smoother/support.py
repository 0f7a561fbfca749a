"""Does every smoother sample have data?  Too few reflections per interval, blank stretches of
the scan and a scan shorter than one interval, detected before refinement and handled by using
fewer intervals.

A sample's *support* is the sum, over the reflections, of its normalised weight at their
composition frames, d p(t) / d v_i: the number of reflections' worth of data that determine
it (a reflection's weights sum to 1 over its two or three samples, four with the B-spline
smoother).  A sample whose neighbourhood of the scan is blank gets only the tails of the
Gaussians (or of its B-spline), and its value is then poorly determined or, with no reflections
within reach at all, not determined: the normal matrix is singular.

The remedy is to merge intervals: `supported_num_intervals` finds the largest number of
intervals, not above the configured one, for which every sample has at least the minimum
support, and `with_supported_intervals` rebuilds a wrapper with it.  A scan shorter than one
interval needs no handling: it gets one interval and two samples (`num_intervals`; four
coefficients with the B-spline smoother).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from xrefine.errors import InputError
from xrefine.scan_varying import SLOT_OF_KIND

from .gaussian_smoother import GaussianSmoother
from .wrapper import ScanVaryingWrapper

__all__ = ["SampleSupport", "sample_support", "supported_num_intervals", "check_sample_support", "with_supported_intervals"]



def sample_support(smoother, frames) -> np.ndarray:
    """Support of every sample (num_values,) from reflections composed at `frames` (one entry
    per reflection; NaN entries are ignored)."""
    frames = np.asarray(frames, dtype=float)
    frames = frames[np.isfinite(frames)]
    unique, counts = np.unique(frames, return_counts=True)
    if len(unique) == 0:
        return np.zeros(smoother.num_values)
    return counts @ smoother.dense_weights(unique)


def supported_num_intervals(x_range, num_intervals: int, frames, min_per_sample: float, smoother_class=GaussianSmoother) -> Optional[int]:
    """The largest number of intervals <= `num_intervals` for which every sample of a smoother
    (`smoother_class(x_range, n)`, by default Gaussian) over `x_range` has support >=
    `min_per_sample`, or None if even one interval has not."""
    for n in range(int(num_intervals), 0, -1):
        if np.all(sample_support(smoother_class(x_range, n), frames) >= min_per_sample):
            return n
    return None


@dataclass
class SampleSupport:
    """The outcome of `check_sample_support`.

    support: per sample (num_values,); weak: indices of samples below `min_per_sample`;
    suggested_num_intervals: the largest supported number of intervals (= num_intervals when
    nothing is weak; None when not even one interval is supported); message: one sentence for
    the user, empty when every sample is supported.
    """

    name: str
    support: np.ndarray
    min_per_sample: float
    weak: np.ndarray
    num_intervals: int
    suggested_num_intervals: Optional[int]
    message: str

    @property
    def ok(self) -> bool:
        return len(self.weak) == 0


def check_sample_support(wrapper: ScanVaryingWrapper, frames_of_reflections, min_per_sample: float) -> SampleSupport:
    """Report the samples of `wrapper` with support below `min_per_sample`, given the
    composition frame of every reflection of its experiments (`Observations.frame`)."""
    smoother = wrapper.smoother
    support = sample_support(smoother, frames_of_reflections)
    weak = np.flatnonzero(support < min_per_sample)
    n = smoother.num_intervals
    if len(weak) == 0:
        return SampleSupport(wrapper.name, support, min_per_sample, weak, n, n, "")
    suggested = supported_num_intervals(smoother.x_range, n, frames_of_reflections, min_per_sample, type(smoother))
    frames = smoother.sample_frames()[weak]
    what = f"{wrapper.name} ({wrapper.kind}) varying along the scan"
    weak_list = ", ".join(f"{i} (frame {f:.0f}: {s:.1f})" for i, f, s in zip(weak, frames, support[weak]))
    force = f"{SLOT_OF_KIND[wrapper.kind]}.force_static" if wrapper.kind in SLOT_OF_KIND else "force_static"
    if suggested is None:
        message = (
            f"{what}: only {support.sum():.0f} reflections in the whole scan, fewer than "
            f"{min_per_sample:g} per sample even with one interval; set {force}=true"
        )
    else:
        message = (
            f"{what}: sample(s) {weak_list} of {smoother.num_values} have the weight of fewer than "
            f"{min_per_sample:g} reflections (too few reflections per interval, or a blank stretch of "
            f"the scan); use smoother.absolute_num_intervals={suggested} (or a wider "
            f"smoother.interval_width_degrees), or set {force}=true"
        )
    return SampleSupport(wrapper.name, support, min_per_sample, weak, n, suggested, message)


def with_supported_intervals(wrapper: ScanVaryingWrapper, frames_of_reflections, min_per_sample: float) -> tuple:
    """Automatic merging of intervals: (wrapper, SampleSupport).  Returns `wrapper` itself if
    every sample is supported, else a new wrapper of the same static parameterisation and scan
    with `suggested_num_intervals` intervals (build it before refining: it starts flat at the
    static parameterisation's current values).  Raises InputError when not even one interval
    is supported."""
    report = check_sample_support(wrapper, frames_of_reflections, min_per_sample)
    if report.ok:
        return wrapper, report
    if report.suggested_num_intervals is None:
        raise InputError(report.message)
    smoother = type(wrapper.smoother)(wrapper.smoother.x_range, report.suggested_num_intervals)
    return ScanVaryingWrapper(wrapper.static, wrapper.scan_experiment, wrapper.scan, smoother), report
