"""Registers the Gaussian smoother (``smoother=gaussian``, the default), the uniform cubic
B-spline smoother (``smoother=bspline``) and their shared options.

``make_gaussian(static, experiment, config)`` smooths `static` along `experiment`'s scan with
n = max(floor(scan width / smoother.interval_width_degrees), 1) intervals, or
smoother.absolute_num_intervals.  It does not see the reflections, so the caller should then
check that every sample has data (blank stretches, too few reflections per interval) with
``support.with_supported_intervals(wrapper, frames, config["smoother.min_reflections_per_sample"])``,
which merges intervals where needed, or ``support.check_sample_support`` to report only.

Why 20 reflections per sample by default: a sample's support is the sum of its normalised
weights over the reflections (each reflection's weights sum to 1), so 20 means twenty
reflections' worth of data -- sixty residuals -- for one value per smoothed parameter.  An end
sample, half an interval outside the scan, gets only about a sixth of an inner sample's
support, so it is the first to fall short.

``make_bspline`` is the same with a uniform cubic B-spline (bspline_smoother.py): n + 3
coefficients per parameter for n intervals, reproducing any cubic drift exactly.  Its end
coefficients, centred a whole interval outside the scan, get only about 1/24 of an inner
coefficient's support, so with the same minimum a B-spline needs about four times as many
reflections per interval at the ends of the scan before intervals are merged.
"""

from __future__ import annotations

from xrefine.config import Option
from xrefine.errors import InputError
from xrefine.hookspecs import hookimpl

from .bspline_smoother import BSplineSmoother
from .gaussian_smoother import GaussianSmoother, num_intervals
from .support import with_supported_intervals
from .wrapper import ScanVaryingWrapper

#: option defaults, also used when a configuration lacks the options (plugin not registered)
DEFAULTS = {
    "smoother.interval_width_degrees": 36.0,
    "smoother.absolute_num_intervals": None,
    "smoother.min_reflections_per_sample": 20,
}


@hookimpl
def xrefine_config_options():
    return [
        Option("smoother.interval_width_degrees", DEFAULTS["smoother.interval_width_degrees"], "float",
               "width of scan in degrees between smoother samples: n = max(floor(scan width / this), 1) intervals"),
        Option("smoother.absolute_num_intervals", DEFAULTS["smoother.absolute_num_intervals"], "int",
               "number of smoother intervals for every scan (Auto: from interval_width_degrees)", allow_none=True),
        Option("smoother.min_reflections_per_sample", DEFAULTS["smoother.min_reflections_per_sample"], "int",
               "fewest reflections' worth of weight (sum of the smoother's normalised weights) a smoother sample "
               "needs; with fewer (blank stretches, sparse data) intervals are merged"),
    ]


def _option(config, key):
    try:
        return config[key]
    except KeyError:
        return DEFAULTS[key]


def make_gaussian(static, experiment, config, frames=None) -> ScanVaryingWrapper:
    """`static` smoothed along `experiment`'s scan (array range, intervals from the options).

    With `frames` (the composition frames of the reflections that will be refined), intervals
    are merged until every sample has at least ``smoother.min_reflections_per_sample`` of
    support (too few reflections per interval, blank stretches of the scan).
    The wrapper's ``scan_experiment`` is the first of `static.experiment_ids` (the factory is
    given the experiment, not its index)."""
    return _make(GaussianSmoother, static, experiment, config, frames)


def make_bspline(static, experiment, config, frames=None) -> ScanVaryingWrapper:
    """As `make_gaussian`, with a uniform cubic B-spline (`BSplineSmoother`): the same
    intervals, n + 3 coefficients per parameter, the same merging of intervals."""
    return _make(BSplineSmoother, static, experiment, config, frames)


def _make(smoother_class, static, experiment, config, frames) -> ScanVaryingWrapper:
    scan = experiment.scan
    if scan is None or experiment.goniometer is None or scan.oscillation[1] == 0.0:
        raise InputError(
            f"{static.name} ({static.kind}) cannot vary along a scan: its experiment is not a rotation scan; "
            "keep it static (its force_static option) or set scan_varying=false"
        )
    n = num_intervals(scan, _option(config, "smoother.interval_width_degrees"), _option(config, "smoother.absolute_num_intervals"))
    wrapper = ScanVaryingWrapper(static, static.experiment_ids[0], scan, smoother_class(scan.array_range, n))
    if frames is not None:
        wrapper, _ = with_supported_intervals(wrapper, frames, _option(config, "smoother.min_reflections_per_sample"))
    return wrapper


@hookimpl
def xrefine_smoothers():
    return {"gaussian": make_gaussian, "bspline": make_bspline}
