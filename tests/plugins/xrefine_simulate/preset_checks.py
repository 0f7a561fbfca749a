"""Helpers shared by the preset tests."""

from __future__ import annotations

import numpy as np
from xrefine.config import build_config
from xrefine.models import DetectorGroup
from xrefine.predict import predict_experiments
from xrefine.refine import build_predictors
from xrefine.selection import select_observations
from xrefine.simulation import observe


def observed(truth, seed: int = 0) -> tuple:
    """(observation table, selection info) as `simulate` makes them from the truth."""
    predicted = predict_experiments(truth.experiments, build_predictors(truth.experiments), truth.d_min)
    table, _ = observe(truth, predicted, np.random.default_rng([seed, 1]))
    _, info = select_observations(truth.experiments, table, build_config(), "simulated")
    return table, info


def panel_frames(detector) -> np.ndarray:
    return np.stack([p.d for p in detector])


def local_frames(detector) -> np.ndarray:
    """Every node's local frame (groups in tree order, then panels), (n, 9)."""
    out = []

    def walk(g):
        out.append(np.concatenate([g.local_fast, g.local_slow, g.local_origin]))
        for c in g.children:
            if isinstance(c, DetectorGroup):
                walk(c)

    walk(detector.root)
    out.extend(np.concatenate([p.local_fast, p.local_slow, p.local_origin]) for p in detector)
    return np.array(out)


def overlapping_points(detector, n: int = 12) -> int:
    """How many of n x n points sampled on each panel are hidden behind, or hide, another
    panel as seen from the sample (0 for a detector whose panels do not overlap)."""
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(0.01, 0.99, n), np.linspace(0.01, 0.99, n)))
    count = 0
    for i, p in enumerate(detector):
        w, h = p.size_mm
        points = p.origin + (u * w)[:, None] * p.fast + (v * h)[:, None] * p.slow
        for j, q in enumerate(detector):
            if i != j:
                x = np.linalg.solve(q.d, points.T).T
                xy = x[:, :2] / x[:, 2:]
                wq, hq = q.size_mm
                count += int(np.sum((x[:, 2] > 0) & (xy[:, 0] > 0) & (xy[:, 0] < wq) & (xy[:, 1] > 0) & (xy[:, 1] < hq)))
    return count
