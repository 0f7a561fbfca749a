"""The outlier-detector interface and the split of reflections into detection jobs.

A detector plugin implements `OutlierDetector.detect` for one job: an (n, d) array of residuals
(columns X mm, Y mm, phi rad for scans).  The core splits reflections into jobs as dials.refine
does (per experiment, optionally per panel, and for scans per block of phi) and calls it once per
job.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

__all__ = ["OutlierDetector", "analyser_block_size", "auto_block_widths", "detect_outliers", "resolve_block_widths",
           "split_jobs"]


class OutlierDetector(ABC):
    """Flags outliers among the residuals of one job."""

    @abstractmethod
    def detect(self, residuals: np.ndarray) -> np.ndarray:
        """residuals: (n, d) float array (one row per reflection).  Returns a bool array (n,),
        True for outliers.  Must be deterministic (fixed seeds) and vectorised."""


AUTO_MIN_BLOCK_WIDTH_DEG = 18.0


def analyser_block_size(phi_deg: np.ndarray) -> float | None:
    """Block size in degrees that DIALS's centroid analysis chooses for one experiment's observed
    phi (degrees), or None when there are no reflections.

    Starting from a target of 1 degree, the observed range is cut into nblocks = range // target
    equal blocks (one fewer when that count did not change since the last try; at least one); the
    blocks are half-open [start, start + size), the last one closed at the largest phi.  While the
    emptiest block holds fewer than 50 reflections and there is more than one block, the target
    grows by 50 / (that count), or doubles when the count is below 5.  Returns range / nblocks."""
    phi_deg = np.sort(np.asarray(phi_deg, dtype=float))
    n = len(phi_deg)
    if n == 0:
        return None
    lo = float(phi_deg[0])
    width = float(phi_deg[-1]) - lo
    target, old_nblocks = 1.0, 0
    while True:
        nblocks = int(width // target)
        if nblocks == old_nblocks:
            nblocks -= 1
        nblocks = max(nblocks, 1)
        size = width / nblocks
        if nblocks == 1:
            return size
        starts = lo + np.arange(nblocks) * size
        first = np.searchsorted(phi_deg, starts, side="left")  # rows before each block's start
        inner = np.searchsorted(phi_deg, starts[:-1] + size, side="left") - first[:-1]
        fewest = int(min(inner.min(), n - first[-1]))
        if fewest >= 50:
            return size
        target *= 2 if fewest < 5 else 50 / fewest
        old_nblocks = nblocks


def auto_block_widths(obs, rows: np.ndarray, experiments) -> list:
    """`outlier.block_width=Auto` as in dials.refine: for each experiment, max(18, the centroid
    analysis block size of the observed phi of its rows in `rows` (bool mask over obs)), or None
    (no split) for an experiment with no such rows or a still."""
    idx = np.flatnonzero(rows)
    exp = obs.experiment[idx]
    order = np.argsort(exp, kind="stable")
    bounds = np.searchsorted(exp[order], np.arange(len(experiments) + 1), side="left")
    phi_deg = obs.xyz_obs[idx[order], 2] * (180.0 / math.pi)  # as DIALS converts
    widths = []
    for e, expt in enumerate(experiments):
        size = None if expt.is_still else analyser_block_size(phi_deg[bounds[e]:bounds[e + 1]])
        widths.append(None if size is None else max(AUTO_MIN_BLOCK_WIDTH_DEG, size))
    return widths


def resolve_block_widths(setting: float | None, obs, rows: np.ndarray, experiments):
    """The `block_width_deg` argument of `split_jobs` for the value of `outlier.block_width`:
    None (Auto) gives the per-experiment list of `auto_block_widths` over `rows`; a number is
    returned unchanged."""
    if setting is None:
        return auto_block_widths(obs, rows, experiments)
    return float(setting)


def _job_width(block_width_deg, e: int | None) -> float | None:
    """Width in degrees for a job of experiment e (None: a job pooling the experiments)."""
    if block_width_deg is None or np.isscalar(block_width_deg):
        return block_width_deg
    if e is not None:
        return block_width_deg[e]
    # pooled experiments: the widest of the per-experiment widths (see split_jobs)
    given = [w for w in block_width_deg if w is not None]
    return max(given) if given else None


def split_jobs(obs, candidates: np.ndarray, experiments, block_width_deg,
               separate_experiments: bool = True, separate_panels: bool = False) -> list:
    """Index arrays (into obs) of the detection jobs, as dials.refine makes them: one per
    experiment (or one for all with `separate_experiments=False`), then, with `separate_panels`,
    one per panel, and then each job cut into blocks of phi over its own observed range.

    `block_width_deg` is a width in degrees used for every job, or a sequence with one width (or
    None) per experiment, as `resolve_block_widths` returns; None or a width <= 0 means no split.
    A job pooling experiments takes the largest width of the sequence.  A job with observed phi
    from phi_low to phi_low + r (r > 0) is cut into n = max(1, round(degrees(r) / width)) blocks of
    width w = r / n: block i takes phi_low + i w <= phi < phi_low + (i + 1) w, the last block
    everything from phi_low + (n - 1) w up, the largest phi included.  Jobs of stills and jobs
    with a single phi value are not split; empty jobs and empty blocks are left out."""
    chosen = np.flatnonzero(candidates)
    groups = []
    if separate_experiments:
        exp = obs.experiment[chosen]
        order = np.argsort(exp, kind="stable")
        bounds = np.searchsorted(exp[order], np.arange(len(experiments) + 1), side="left")
        groups = [(e, chosen[order[bounds[e]:bounds[e + 1]]]) for e in range(len(experiments))]
    elif len(experiments):
        groups = [(None, chosen)]
    if separate_panels:
        groups = [(e, idx[obs.panel[idx] == p]) for e, idx in groups for p in np.unique(obs.panel[idx])]
    jobs = []
    for e, idx in groups:
        if len(idx) == 0:
            continue
        still = experiments[e].is_still if e is not None else all(x.is_still for x in experiments)
        width = _job_width(block_width_deg, e)
        phi = obs.xyz_obs[idx, 2]
        phi_low = float(phi.min())
        phi_range = float(phi.max()) - phi_low
        if still or width is None or width <= 0 or phi_range == 0.0:
            jobs.append(idx)
            continue
        n_blocks = max(1, round(math.degrees(phi_range / width)))
        if n_blocks == 1:
            jobs.append(idx)
            continue
        real_width = phi_range / n_blocks
        edges = phi_low + np.arange(1, n_blocks) * real_width
        which = np.searchsorted(edges, phi, side="right")
        order = np.argsort(which, kind="stable")
        splits = np.flatnonzero(np.diff(which[order])) + 1
        jobs.extend(np.split(idx[order], splits))
    return jobs


def detect_outliers(detector: OutlierDetector, obs, residuals: np.ndarray, candidates: np.ndarray, experiments,
                    block_width_deg, min_reflections: int, separate_experiments: bool = True,
                    separate_panels: bool = False) -> np.ndarray:
    """Outlier mask over obs rows: jobs (see `split_jobs`, which takes `block_width_deg`) smaller
    than `min_reflections` are rejected whole (as DIALS does); rows that are not candidates are
    never flagged here."""
    out = np.zeros(len(obs), dtype=bool)
    for job in split_jobs(obs, candidates, experiments, block_width_deg, separate_experiments, separate_panels):
        if len(job) < min_reflections:
            out[job] = True
        else:
            out[job] = detector.detect(residuals[job])
    return out
