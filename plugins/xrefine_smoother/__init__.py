"""xrefine_smoother plugin: the Gaussian smoother of scan-varying refinement (MATH.md 5), a
uniform cubic B-spline alternative, and a wrapper that makes any static parameterisation
scan-varying through its public interface."""

from .bspline_smoother import BSplineSmoother
from .gaussian_smoother import GaussianSmoother, num_intervals
from .support import SampleSupport, check_sample_support, sample_support, supported_num_intervals, with_supported_intervals
from .wrapper import ScanVaryingWrapper

__all__ = [
    "BSplineSmoother",
    "GaussianSmoother",
    "num_intervals",
    "ScanVaryingWrapper",
    "SampleSupport",
    "check_sample_support",
    "sample_support",
    "supported_num_intervals",
    "with_supported_intervals",
]
