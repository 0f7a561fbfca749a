"""Every engine reaches the same minimum from the same perturbed start; LM's two damping modes
agree; the stop reasons are honest."""

import numpy as np
import pytest

import xrefine


@pytest.fixture(scope="module")
def data(wedge, sim):
    truth, predicted, start = wedge
    table, _ = sim.noisy(truth, predicted, seed=21)
    ref = xrefine.refine(start, table, scan_varying="false", engine="gn", outlier__algorithm="null", step_tolerance_esd=1e-4)
    free = [p for p in ref.parameters if not p["fixed"]]
    return start, table, np.array([p["value"] for p in free]), np.array([p["esd"] for p in free])


@pytest.mark.parametrize("engine,options", [
    ("lm", {}), ("lm", {"lm__damping": "identity"}), ("gn", {}), ("scipy-trf", {}), ("scipy-lm", {}),
])
def test_engines_agree(data, engine, options):
    start, table, x_ref, esd = data
    res = xrefine.refine(start, table, scan_varying="false", engine=engine, outlier__algorithm="null", **options)
    x = np.array([p["value"] for p in res.parameters if not p["fixed"]])
    assert res.converged, res.stop_reason
    assert np.all(np.abs(x - x_ref) < 0.05 * esd), (x - x_ref) / esd
    assert res.history[-1].objective <= res.history[0].objective


def test_max_iterations_stops_early(data):
    start, table, _, _ = data
    res = xrefine.refine(start, table, scan_varying="false", engine="lm", outlier__algorithm="null", max_iterations=1)
    assert "maximum number of iterations" in res.stop_reason
    assert res.history[-1].step == 1


def test_rmsd_tolerance_is_dials_test(data):
    start, table, _, _ = data
    res = xrefine.refine(start, table, scan_varying="false", engine="gn", outlier__algorithm="null", rmsd_tolerance=1e-4,
                         step_tolerance_esd=0.0)
    assert res.stop_reason == "RMSD no longer decreasing"


def test_target_rmsd_stop(data):
    start, table, _, _ = data
    res = xrefine.refine(start, table, scan_varying="false", engine="lm", outlier__algorithm="null", bin_size_fraction=0.5)
    assert res.stop_reason == "RMSD target achieved"
    assert len(res.history) < 5
