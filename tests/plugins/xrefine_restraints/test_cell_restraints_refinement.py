"""End to end: tie-to-group pulls the cells of noisy narrow wedges towards their common value as
the sigma shrinks; tie-to-target pulls a cell to the target."""

import numpy as np
import pytest
import xrefine
from restraint_cases import group_spread, joint_wedges

#: converge tightly, so that differences between runs are the restraints' doing
RUN = {"scan_varying": "false", "outlier__algorithm": "null", "step_tolerance_esd": 1e-3, "max_iterations": 50}


@pytest.fixture(scope="module")
def wedges(sim):
    """Four 1-degree wedges of independent thaumatin crystals sharing beam and detector, with
    centroid sigmas of 2-3 px (so that each wedge's cell is uncertain to ~0.01-0.03 Angstrom)."""
    truth = joint_wedges(sim, [1, 2, 3, 4], n_images=10)
    truth.sigma_px = (2.0, 3.0)
    truth.sigma_images = (0.5, 0.75)
    table, _ = sim.noisy(truth, sim.predicted_for(truth), seed=5)
    return truth, table, sim.start_for(truth, seed=5)


def _cells(result) -> np.ndarray:
    return np.array([e.crystal.unit_cell for e in result.experiments])


@pytest.mark.parametrize("target", ["mean", "median"])
def test_tie_to_group_pulls_cells_together_as_sigma_shrinks(wedges, target):
    _, table, start = wedges
    free = xrefine.refine(start, table, **RUN)
    assert free.converged
    spreads = [group_spread(_cells(free))]
    for sigma in (1.0, 0.01, 0.0001):
        res = xrefine.refine(start, table, restraints__tie_to_group__sigmas=[sigma] * 3 + [0] * 3,
                             restraints__tie_to_group__target=target, **RUN)
        assert res.converged
        spreads.append(group_spread(_cells(res)))
    assert spreads[0] > 0.03  # the wedges disagree by a few of their esds
    assert all(a > b for a, b in zip(spreads, spreads[1:])), spreads
    assert spreads[2] < 0.5 * spreads[0]
    assert spreads[3] < 1e-4
    # tied together, the cells agree with the truth within their (common) esds
    truth = wedges[0].experiments[0].crystal.unit_cell
    esd = np.array(res.cells[0]["esd"])
    assert np.all(np.abs(_cells(res)[:, :3] - truth[:3]) < 3 * esd[:3])


def test_tie_to_target_pulls_every_cell_to_the_target(wedges):
    _, table, start = wedges
    target = [57.7, 57.7, 150.4, 90, 90, 90]
    res = xrefine.refine(start, table, restraints__tie_to_target__values=target,
                         restraints__tie_to_target__sigmas=[1e-4, 1e-4, 1e-4, 0, 0, 0],
                         restraints__tie_to_target__experiments=["0", "2"], **RUN)
    cells = _cells(res)
    assert np.allclose(cells[[0, 2]], target, atol=1e-3)
    assert np.all(np.abs(cells[[1, 3], 2] - 150.4) > 0.05)  # the others follow their data


def test_tie_to_group_couples_experiments_that_share_no_model(sim):
    import copy

    truth = joint_wedges(sim, [1, 2], n_images=10)
    second = truth.experiments[1]
    second.beam, second.detector, second.goniometer = (copy.deepcopy(m) for m in (second.beam, second.detector,
                                                                                    second.goniometer))
    table, _ = sim.noisy(truth, sim.predicted_for(truth), seed=5)
    res = xrefine.refine(sim.start_for(truth, seed=5), table, restraints__tie_to_group__sigmas=[1e-4] * 3 + [0] * 3,
                         **RUN)
    assert group_spread(_cells(res)) < 1e-3


def test_a_restraint_on_a_cell_that_becomes_scan_varying_is_reported(sim):
    """dials.refine drops cell restraints when the cell is refined scan-varying; xrefine does
    too, but says so in the summary (and the static phase is restrained)."""
    truth = sim.small_truth(n_images=100)
    table, _ = sim.noisy(truth, sim.predicted_for(truth), seed=6)
    start = sim.start_for(truth, seed=6)
    options = {"restraints__tie_to_target__values": [57.8, 57.8, 150.2, 90, 90, 90],
               "restraints__tie_to_target__sigmas": [0.01, 0.01, 0.01, 0, 0, 0], "outlier__algorithm": "null"}
    varying = xrefine.refine(start, table, scan_varying="auto", **options)
    (note,) = varying.selection["notes"]
    assert note.startswith("restraint Crystal1 cell tied to target") and "static phase only" in note
    assert "Note: restraint Crystal1 cell tied to target" in str(varying)
    static_cell = xrefine.refine(start, table, scan_varying="auto", crystal__unit_cell__force_static=True, **options)
    assert static_cell.selection["notes"] == []
