"""The outlier-detector interface and the split of reflections into detection jobs.

A detector plugin implements `OutlierDetector.detect` for one job: an (n, d) array of residuals
(columns X mm, Y mm, phi rad for scans).  The core splits reflections into jobs (per experiment,
optionally per panel, and for scans per block of phi) and calls it once per job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["OutlierDetector", "split_jobs", "detect_outliers"]


class OutlierDetector(ABC):
    """Flags outliers among the residuals of one job."""

    @abstractmethod
    def detect(self, residuals: np.ndarray) -> np.ndarray:
        """residuals: (n, d) float array (one row per reflection).  Returns a bool array (n,),
        True for outliers.  Must be deterministic (fixed seeds) and vectorised."""


def split_jobs(obs, candidates: np.ndarray, experiments, block_width_deg: float,
               separate_experiments: bool = True, separate_panels: bool = False) -> list:
    """Index arrays (into obs) of the detection jobs: one per experiment (or one for all with
    `separate_experiments=False`), then, with `separate_panels`, one per panel, and for scans one
    per phi block of about `block_width_deg` (n_blocks = max(1, round(range / width)), over the
    scan's range; a job pooling experiments is split over the range of the first)."""
    groups = []
    if separate_experiments:
        groups = [(e, np.flatnonzero(candidates & (obs.experiment == e))) for e in range(len(experiments))]
    elif len(experiments):
        groups = [(0, np.flatnonzero(candidates))]
    if separate_panels:
        groups = [(e, idx[obs.panel[idx] == p]) for e, idx in groups for p in np.unique(obs.panel[idx])]
    jobs = []
    for e, idx in groups:
        if len(idx) == 0:
            continue
        expt = experiments[e]
        if expt.is_still or block_width_deg <= 0:
            jobs.append(idx)
            continue
        lo, hi = expt.scan.oscillation_range_rad
        lo, hi = min(lo, hi), max(lo, hi)
        n_blocks = max(1, int(round(np.degrees(hi - lo) / block_width_deg)))
        edges = np.linspace(lo, hi, n_blocks + 1)
        which = np.clip(np.searchsorted(edges, obs.xyz_obs[idx, 2], side="right") - 1, 0, n_blocks - 1)
        order = np.argsort(which, kind="stable")
        splits = np.flatnonzero(np.diff(which[order])) + 1
        jobs.extend(np.split(idx[order], splits))
    return jobs


def detect_outliers(detector: OutlierDetector, obs, residuals: np.ndarray, candidates: np.ndarray, experiments,
                    block_width_deg: float, min_reflections: int, separate_experiments: bool = True,
                    separate_panels: bool = False) -> np.ndarray:
    """Outlier mask over obs rows: jobs smaller than `min_reflections` are rejected whole (as
    DIALS does); rows that are not candidates are never flagged here."""
    out = np.zeros(len(obs), dtype=bool)
    for job in split_jobs(obs, candidates, experiments, block_width_deg, separate_experiments, separate_panels):
        if len(job) < min_reflections:
            out[job] = True
        else:
            out[job] = detector.detect(residuals[job])
    return out
