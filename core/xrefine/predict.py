"""Full-scan prediction of every experiment (``xrefine predict``, the simulator)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .models import ExperimentList
from .reflections import ReflectionTable, concatenate

__all__ = ["predict_experiments"]


def predict_experiments(experiments: ExperimentList, predictors: list, d_min: Optional[float] = None) -> ReflectionTable:
    """All reflections of every experiment to d_min (Angstrom; None: the detector corners)
    that reach a panel, with `id` set to the experiment index and the identifiers map filled."""
    tables = []
    for i, (expt, pred) in enumerate(zip(experiments, predictors)):
        t = pred.predict_all(expt, d_min)
        t["id"] = np.full(t.nrows, i, dtype=np.int32)
        tables.append(t)
    out = concatenate(tables)
    out.identifiers = {i: e.identifier for i, e in enumerate(experiments) if e.identifier}
    return out
