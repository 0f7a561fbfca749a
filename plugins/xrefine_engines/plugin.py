"""Registers the minimisation engines."""

from xrefine.hookspecs import hookimpl

from .gauss_newton import GaussNewton
from .levenberg_marquardt import LevenbergMarquardt
from .scipy_least_squares import ScipyLM, ScipyTRF


@hookimpl
def xrefine_engines():
    return {"gn": GaussNewton, "lm": LevenbergMarquardt, "scipy-trf": ScipyTRF, "scipy-lm": ScipyLM}
