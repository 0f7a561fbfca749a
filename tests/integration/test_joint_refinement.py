"""Issue 4 acceptance on polyhedrin-5sweeps: joint refinement of 16 lattices sharing detector and
beam gives cells closer to the truth, with smaller esds, than refining each lattice alone."""

import importlib.util
from pathlib import Path

import numpy as np

spec = importlib.util.spec_from_file_location(
    "joint_polyhedrin", Path(__file__).resolve().parents[2] / "benchmarks" / "joint_polyhedrin.py")
joint_polyhedrin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(joint_polyhedrin)


def test_joint_beats_alone():
    truth, joint, alone = joint_polyhedrin.refine_both(0, scan_varying="false")
    assert len(truth) == 16 and len(truth.unique("detector")) == 1 and len(truth.unique("beam")) == 1
    assert len(joint.cells) == 16 and joint.selection.get("independent_sets") is None
    a_true = truth[0].crystal.unit_cell[0]
    j = np.array([joint_polyhedrin.cell_a(joint, i) for i in range(16)])
    a = np.array([joint_polyhedrin.cell_a(r) for r in alone])
    assert np.sqrt(np.mean((j[:, 0] - a_true) ** 2)) < np.sqrt(np.mean((a[:, 0] - a_true) ** 2))
    assert np.all(j[:, 1] < a[:, 1])
    # the joint esds are honest
    assert np.sqrt(np.mean(((j[:, 0] - a_true) / j[:, 1]) ** 2)) < 2.0
