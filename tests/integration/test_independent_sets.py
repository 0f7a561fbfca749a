"""Experiments that share nothing are refined as independent sets, with the same answer as
refining each alone, and the merged result numbers models over the whole job."""

import copy

import numpy as np

import xrefine
from xrefine.independent_sets import independent_sets
from xrefine.models import ExperimentList
from xrefine.reflections import concatenate


def test_sets_follow_shared_models(wedge):
    _, _, start = wedge
    a, b, c = (copy.deepcopy(start[0]) for _ in range(3))
    c.detector = b.detector  # b and c share a detector
    assert independent_sets(ExperimentList([a, b, c])) == [[0], [1, 2]]


def test_two_unrelated_experiments(sim):
    truths = [sim.small_truth(seed=s, n_images=100) for s in (1, 2)]
    starts, tables = [], []
    for k, truth in enumerate(truths):
        starts.append(sim.start_for(truth, seed=k))
        t, _ = sim.noisy(truth, sim.predicted_for(truth), seed=10 + k)
        tables.append(t)
    joint = ExperimentList([starts[0][0], starts[1][0]])
    table = concatenate(tables)
    table["id"] = np.repeat([0, 1], [tables[0].nrows, tables[1].nrows]).astype(np.int32)
    table.identifiers = {0: truths[0].experiments[0].identifier, 1: truths[1].experiments[0].identifier}
    res = xrefine.refine(joint, table, scan_varying="false")
    alone = [xrefine.refine(starts[k], tables[k], scan_varying="false") for k in range(2)]
    assert res.selection["independent_sets"] == [[0], [1]]
    names = [p["name"] for p in res.parameters if not p["fixed"]]
    assert "Crystal2Phi1" in names and "Detector2Dist" in names and len(set(names)) == len(names)
    free = [p for p in res.parameters if not p["fixed"]]
    for k in range(2):
        mine = [p["value"] for p in free if p["name"].startswith((f"Detector{k + 1}", f"Beam{k + 1}", f"Crystal{k + 1}"))]
        theirs = [p["value"] for p in alone[k].parameters if not p["fixed"]]
        assert np.allclose(mine, theirs, rtol=0, atol=1e-9)
    assert [r["experiment"] for r in res.rmsd_by_experiment] == [0, 1]
    assert res.covariance.shape == (len(free), len(free))
    assert res.reflections.nrows == table.nrows and "xyzcal.px" in res.reflections
    # the merged table's predictions are each set's
    used = res.reflections.get_flags(xrefine.Flags.used_in_refinement)
    assert used.sum() > 0.9 * table.nrows
