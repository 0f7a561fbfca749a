"""Registers the centroid-outlier detectors and their options."""

from xrefine.config import Option
from xrefine.hookspecs import hookimpl

from .mcd import MCDDetector
from .tukey import TukeyDetector


@hookimpl
def xrefine_config_options():
    return [
        Option("outlier.tukey.iqr_multiplier", 1.5, "float", "Tukey fences at this many interquartile ranges beyond the hinges"),
        Option("outlier.mcd.alpha", 0.5, "float", "MCD: fraction of the data left out of the covariance fit (h = (n+p+1)/2 at 0.5)"),
        Option("outlier.mcd.threshold_probability", 0.975, "float", "MCD: chi-square probability of the Mahalanobis cut-off on the starting model"),
        Option("outlier.mcd.converged_threshold_probability", 0.999, "float",
               "MCD: chi-square probability of the cut-off on a converged model (trims almost no good data)"),
        Option("outlier.tukey.converged_iqr_multiplier", 3.0, "float", "Tukey fences on a converged model (far-out values only)"),
    ]


@hookimpl
def xrefine_outlier_detectors():
    def mcd(config, converged=False):
        key = "outlier.mcd.converged_threshold_probability" if converged else "outlier.mcd.threshold_probability"
        return MCDDetector(alpha=config["outlier.mcd.alpha"], threshold_probability=config[key], seed=config["random_seed"])

    def tukey(config, converged=False):
        key = "outlier.tukey.converged_iqr_multiplier" if converged else "outlier.tukey.iqr_multiplier"
        return TukeyDetector(iqr_multiplier=config[key])

    return {"mcd": mcd, "tukey": tukey}
