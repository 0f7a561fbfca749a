"""Hook implementations of the example plugin (the module the entry point names).

- ``xrefine_config_options``: the option ``outlier.sigma_clip.k``;
- ``xrefine_outlier_detectors``: the detector ``sigma-clip`` (``outlier.algorithm=sigma-clip``);
- ``xrefine_refinement_started`` / ``xrefine_step_done``: keep the step records of the current
  (or most recent) refinement in `steps`.  ``xrefine_refinement_started`` is called once per
  independent set of experiments, so for a job split into several sets `steps` holds the last
  set's records.
"""

from __future__ import annotations

import math

from xrefine.config import Option
from xrefine.errors import InputError
from xrefine.hookspecs import hookimpl

from .sigma_clip import SigmaClipDetector

#: StepRecords of the refinement in progress, or of the last one; emptied when a refinement (or
#: one independent set of it) starts
steps: list = []


@hookimpl
def xrefine_config_options():
    return [
        Option("outlier.sigma_clip.k", 5.0, "float",
               "sigma-clip: flag a reflection whose residual lies more than k x 1.4826 x MAD from the median in any dimension"),
    ]


def _make_detector(config, converged: bool = False) -> SigmaClipDetector:
    # `converged` asks for a detector for the residuals of a converged model, which should flag
    # only what the noise cannot explain; k robust sigmas (5 by default) is such a cut-off
    # already, so both detections use the same k.
    k = config["outlier.sigma_clip.k"]
    if not (math.isfinite(k) and k > 0.0):
        raise InputError(f"outlier.sigma_clip.k={k!r} must be a positive number of robust standard deviations")
    return SigmaClipDetector(k)


@hookimpl
def xrefine_outlier_detectors():
    return {"sigma-clip": _make_detector}


@hookimpl
def xrefine_refinement_started(problem, config):
    steps.clear()


@hookimpl
def xrefine_step_done(record):
    steps.append(record)
