"""Scan-varying refinement on awkward scans: shorter than one interval, a blank stretch, and
too few reflections for the requested intervals are handled by using fewer intervals."""

import numpy as np

import xrefine


def _samples_of(res, name="Crystal1Phi1"):
    return sum(p["name"].startswith(name + "_sample") for p in res.parameters)


def test_scan_shorter_than_one_interval(wedge, sim):
    truth, predicted, start = wedge  # 15 degrees < 36
    table, _ = sim.noisy(truth, predicted, seed=3)
    res = xrefine.refine(start, table, scan_varying="true")
    assert _samples_of(res) == 2
    assert res.experiments[0].crystal.A_at_scan_points.shape == (151, 3, 3)
    assert res.rmsd_by_experiment[0]["rmsd_x_px"] < 0.3


def test_blank_stretch_merges_intervals(wedge, sim):
    truth, predicted, start = wedge
    table, _ = sim.noisy(truth, predicted, seed=4)
    # 10 intervals of 1.5 degrees requested; no reflection between 4 and 11 degrees
    phi = np.degrees(table["xyzobs.mm.value"][:, 2])
    blank = (phi > 4.0) & (phi < 11.0)
    flags = table["flags"].copy()
    flags[blank] |= np.uint64(xrefine.Flags.excluded_for_refinement)
    table["flags"] = flags
    merged = xrefine.refine(start, table, scan_varying="true", smoother__absolute_num_intervals=10)
    assert _samples_of(merged) < 12
    assert merged.converged
    assert merged.rmsd_by_experiment[0]["rmsd_x_px"] < 0.3


def test_too_few_reflections_per_interval(wedge, sim):
    truth, predicted, start = wedge
    table, _ = sim.noisy(truth, predicted, seed=5)
    res = xrefine.refine(start, table, scan_varying="true", smoother__absolute_num_intervals=30,
                         smoother__min_reflections_per_sample=400)
    assert 2 <= _samples_of(res) < 32
