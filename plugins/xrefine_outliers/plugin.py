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
        Option("outlier.mcd.threshold_probability", 0.975, "float", "MCD: chi-square probability of the Mahalanobis cut-off"),
    ]


@hookimpl
def xrefine_outlier_detectors():
    return {
        "mcd": lambda config: MCDDetector(
            alpha=config["outlier.mcd.alpha"],
            threshold_probability=config["outlier.mcd.threshold_probability"],
            seed=config["random_seed"],
        ),
        "tukey": lambda config: TukeyDetector(iqr_multiplier=config["outlier.tukey.iqr_multiplier"]),
    }
