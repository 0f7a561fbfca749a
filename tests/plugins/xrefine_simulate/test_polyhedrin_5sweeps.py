"""The polyhedrin-5sweeps preset: 16 cubic lattices in 5 narrow sweeps sharing beam and detector."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import xrefine.plugins
from preset_checks import observed
from xrefine.io import read_experiments
from xrefine.simulation import simulate
from xrefine_simulate.presets import POLYHEDRIN_SWEEPS, polyhedrin_5sweeps


@pytest.fixture(scope="module")
def truth():
    return polyhedrin_5sweeps(0)


def sweeps_of(experiments) -> list:
    """Experiment indices grouped by the scan object they share, in order."""
    groups: dict = {}
    for i, e in enumerate(experiments):
        groups.setdefault(id(e.scan), []).append(i)
    return list(groups.values())


def test_registered():
    assert xrefine.plugins.registrations("xrefine_simulation_presets")["polyhedrin-5sweeps"].build is polyhedrin_5sweeps


def test_sixteen_lattices_in_five_sweeps(truth):
    experiments = truth.experiments
    assert len(experiments) == 16
    sweeps = sweeps_of(experiments)
    assert [len(s) for s in sweeps] == [4, 3, 3, 3, 3] == [s[0] for s in POLYHEDRIN_SWEEPS]
    for members, (_, start, width) in zip(sweeps, POLYHEDRIN_SWEEPS):
        scan = experiments[members[0]].scan
        assert 3.0 <= scan.num_images * scan.oscillation[1] <= 5.0
        assert scan.oscillation == (start, 0.1) and scan.num_images * 0.1 == pytest.approx(width)
        # a sweep's lattices share its goniometer too; sweeps share neither
        assert len({id(experiments[i].goniometer) for i in members}) == 1
    assert len(experiments.unique("goniometer")) == len(experiments.unique("scan")) == 5


def test_beam_and_detector_shared_by_identity(truth):
    experiments = truth.experiments
    assert all(e.beam is experiments[0].beam and e.detector is experiments[0].detector for e in experiments)
    assert len(experiments.unique("beam")) == len(experiments.unique("detector")) == 1
    assert len(experiments[0].detector) == 1


def test_same_cell_different_orientations(truth):
    crystals = truth.experiments.unique("crystal")
    assert len(crystals) == 16
    for c in crystals:
        np.testing.assert_allclose(c.unit_cell, [103.0, 103.0, 103.0, 90, 90, 90], atol=1e-9)
        assert c.space_group_hall_symbol == " I 2 2 3"
    U = np.array([c.U for c in crystals])
    angles = [np.degrees(np.arccos(np.clip((np.trace(a @ b.T) - 1) / 2, -1, 1))) for a, b in itertools.combinations(U, 2)]
    assert min(angles) > 1.0
    assert len({e.identifier for e in truth.experiments}) == 16


def test_deterministic_by_seed(truth):
    again, other = polyhedrin_5sweeps(0), polyhedrin_5sweeps(1)
    for a, b in zip(truth.experiments, again.experiments):
        np.testing.assert_array_equal(a.crystal.A, b.crystal.A)
        assert a.identifier == b.identifier
    assert not np.array_equal(other.experiments[0].crystal.A, truth.experiments[0].crystal.A)


def test_counts_per_lattice(truth):
    table, info = observed(truth)
    assert 80_000 < table.nrows < 100_000
    per_lattice = np.bincount(np.asarray(table["id"]).astype(int), minlength=16)
    assert per_lattice.min() > 3_500 and per_lattice.max() < 9_000
    # narrow wedges: no subsampling
    assert info["n_selected"] > 0.99 * table.nrows


def test_written_files_keep_the_sharing(tmp_path):
    simulate("polyhedrin-5sweeps", str(tmp_path), seed=0)
    for name in ("truth.expt", "start.expt"):
        raw = json.loads((tmp_path / name).read_text())
        assert [len(raw[k]) for k in ("experiment", "beam", "detector", "scan", "goniometer", "crystal")] == [16, 1, 1, 5, 5, 16]
        experiments = read_experiments(str(tmp_path / name))
        assert [len(s) for s in sweeps_of(experiments)] == [4, 3, 3, 3, 3]
