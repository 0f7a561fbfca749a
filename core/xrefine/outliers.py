"""The outlier-detector interface and the split of reflections into detection jobs.

A detector plugin implements `OutlierDetector.detect` for one job: an (n, d) array of residuals
(columns X mm, Y mm, phi rad for scans).  The core splits reflections into jobs (per experiment,
and for scans per block of phi) and calls it once per job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["OutlierDetector"]


class OutlierDetector(ABC):
    """Flags outliers among the residuals of one job."""

    @abstractmethod
    def detect(self, residuals: np.ndarray) -> np.ndarray:
        """residuals: (n, d) float array (one row per reflection).  Returns a bool array (n,),
        True for outliers.  Must be deterministic (fixed seeds) and vectorised."""
