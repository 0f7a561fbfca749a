"""Refinement from a perturbed start recovers the known truth (issue 2 acceptance)."""

import numpy as np
import pytest

import xrefine
from xrefine.geometry import unit
from xrefine.models import metric_elements




def model_distance(a, b):
    """Differences of two experiments' models in refinement's scaled units: detector origin
    (mm) and axes (mrad), beam direction (mrad) and wavenumber, orientation (mrad), reciprocal
    metric (1e5 Angstrom^-2)."""
    ea, eb = a[0], b[0]
    out = {}
    pa, pb = ea.detector[0], eb.detector[0]
    out["detector origin mm"] = np.max(np.abs(pa.origin - pb.origin))
    out["detector axes mrad"] = 1000 * max(np.max(np.abs(pa.fast - pb.fast)), np.max(np.abs(pa.slow - pb.slow)))
    out["beam direction mrad"] = 1000 * np.max(np.abs(unit(ea.beam.s0) - unit(eb.beam.s0)))
    out["wavenumber"] = abs(np.linalg.norm(ea.beam.s0) - np.linalg.norm(eb.beam.s0))
    dU = ea.crystal.U @ eb.crystal.U.T
    # the rotation angle from the antisymmetric part (arccos of the trace cannot resolve
    # angles below ~1e-8 rad)
    w = np.array([dU[2, 1] - dU[1, 2], dU[0, 2] - dU[2, 0], dU[1, 0] - dU[0, 1]])
    out["orientation mrad"] = 1000 * np.arctan2(np.linalg.norm(w), np.trace(dU) - 1)
    out["metric 1e5"] = 1e5 * np.max(np.abs(metric_elements(ea.crystal.B) - metric_elements(eb.crystal.B)))
    return out


@pytest.mark.parametrize("engine", ["lm", "gn"])
def test_noise_free_data_recover_the_truth(wedge, sim, engine):
    truth, predicted, start = wedge
    table, _ = sim.noisy(truth, predicted, seed=1, noise=0.0)
    before = model_distance(start, truth.experiments)
    assert before["detector origin mm"] > 0.3 and before["orientation mrad"] > 1.0  # a real perturbation
    res = xrefine.refine(start, table, engine=engine, outlier__algorithm="null", step_tolerance_esd=0.0, max_iterations=15, scan_varying="false")
    after = model_distance(res.experiments, truth.experiments)
    for k, v in after.items():
        assert v < 1e-6, (k, v, before[k])
    rmsd = res.rmsd_by_experiment[0]
    assert rmsd["rmsd_x_px"] < 1e-4 and rmsd["rmsd_y_px"] < 1e-4 and rmsd["rmsd_z_images"] < 1e-4


def test_refinement_does_not_modify_its_inputs(wedge, sim):
    truth, predicted, start = wedge
    table, _ = sim.noisy(truth, predicted, seed=2)
    origin = start[0].detector[0].origin.copy()
    obs = table["xyzobs.mm.value"].copy()
    xrefine.refine(start, table, scan_varying="false")
    assert np.array_equal(start[0].detector[0].origin, origin)
    assert np.array_equal(table["xyzobs.mm.value"], obs)
