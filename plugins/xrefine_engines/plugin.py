"""Registers the minimisation engines."""

from xrefine.config import Option
from xrefine.hookspecs import hookimpl

from .gauss_newton import GaussNewton
from .levenberg_marquardt import LevenbergMarquardt
from .scipy_least_squares import ScipyLM, ScipyTRF


@hookimpl
def xrefine_engines():
    return {"gn": GaussNewton, "lm": LevenbergMarquardt, "scipy-trf": ScipyTRF, "scipy-lm": ScipyLM}


@hookimpl
def xrefine_config_options():
    return [
        Option("lm.damping", "diagonal", "choice",
               "Levenberg-Marquardt damping: diagonal (Marquardt, scale-free) or identity (dials.refine)",
               choices=("diagonal", "identity")),
    ]
