"""Registers the minimisation engines."""

from xrefine.config import Option
from xrefine.hookspecs import hookimpl

from .gauss_newton import GaussNewton
from .levenberg_marquardt import LevenbergMarquardt
from .scipy_least_squares import DENSE_LIMIT, ScipyLM, ScipyTRF


@hookimpl
def xrefine_engines():
    return {"gn": GaussNewton, "lm": LevenbergMarquardt, "scipy-trf": ScipyTRF, "scipy-lm": ScipyLM}


@hookimpl
def xrefine_config_options():
    return [
        Option("lm.damping", "diagonal", "choice",
               "Levenberg-Marquardt damping: diagonal (Marquardt, scale-free) or identity (dials.refine)",
               choices=("diagonal", "identity")),
        Option("scipy.dense_limit", DENSE_LIMIT, "int",
               "scipy engines: largest Jacobian (rows x parameters) handed over dense (2 GB at the default); larger ones go sparse (LSMR)"),
    ]
