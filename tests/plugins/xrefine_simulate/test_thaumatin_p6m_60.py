"""The thaumatin-p6m-60 preset: a Pilatus 6M as 60 modules with true calibration errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xrefine.plugins
from preset_checks import local_frames, overlapping_points, panel_frames
from xrefine.config import build_config
from xrefine.io import read_experiments, read_reflections
from xrefine.selection import select_observations
from xrefine.simulation import simulate
from xrefine_simulate.node_errors import displaced_frame
from xrefine_simulate.pilatus6m_modules import GAP_PX, MODULE_SIZE_PX, PIXEL_MM
from xrefine_simulate.presets import (
    P6M_MODULE_ERROR,
    THAUMATIN_BEAM_CENTRE_PX,
    THAUMATIN_TILT_MRAD,
    pilatus6m_frame,
    thaumatin_p6m_60,
    thaumatin_sweep,
)


@pytest.fixture(scope="module")
def truth():
    return thaumatin_p6m_60(0)


def test_registered():
    assert xrefine.plugins.registrations("xrefine_simulation_presets")["thaumatin-p6m-60"].build is thaumatin_p6m_60


def test_two_level_hierarchy_of_60_modules(truth):
    (expt,) = truth.experiments
    detector = expt.detector
    assert len(detector) == 60 and detector.depth() == 1
    assert len(detector.groups_at_level(1)) == 60
    # the root carries the whole-detector frame, 600 mm away
    fast, slow, origin = pilatus6m_frame(600.0, THAUMATIN_BEAM_CENTRE_PX, THAUMATIN_TILT_MRAD)
    np.testing.assert_array_equal(detector.root.local_fast, fast)
    np.testing.assert_array_equal(detector.root.local_slow, slow)
    np.testing.assert_array_equal(detector.root.local_origin, origin)
    assert detector[0].name == "row-00_col-00" and detector[59].name == "row-11_col-04"
    for p in detector:
        assert p.image_size == MODULE_SIZE_PX and p.pixel_size == (PIXEL_MM, PIXEL_MM)
        assert p.parallax and p.thickness == 0.32 and p.mu > 0
    assert detector[7].extra["raw_image_offset"] == [2 * 494, 212]


def test_start_is_the_ideal_grid_with_real_gaps(truth):
    ideal = truth.start_experiments[0].detector
    assert ideal is not truth.experiments[0].detector
    pitch = PIXEL_MM * (np.array(MODULE_SIZE_PX) + GAP_PX)
    for k, p in enumerate(ideal):
        row, col = divmod(k, 5)
        np.testing.assert_array_equal(p.local_fast, [1.0, 0.0, 0.0])
        np.testing.assert_array_equal(p.local_slow, [0.0, 1.0, 0.0])
        np.testing.assert_allclose(p.local_origin, [col * pitch[0], row * pitch[1], 0.0], rtol=0, atol=1e-12)
    # the rest of the start is the truth (the simulator perturbs it), not shared with it
    np.testing.assert_array_equal(local_frames(ideal)[0], local_frames(truth.experiments[0].detector)[0])
    start, true = truth.start_experiments[0], truth.experiments[0]
    assert start.crystal is not true.crystal
    np.testing.assert_array_equal(start.crystal.A, true.crystal.A)


def test_modules_carry_the_recorded_errors(truth):
    record = truth.extra["true_module_errors"]
    json.dumps(truth.extra)
    errors = np.array(record["values"])
    assert errors.shape == (60, 6) and record["sigma"] == P6M_MODULE_ERROR
    ideal = truth.start_experiments[0].detector
    for p, q, e in zip(truth.experiments[0].detector, ideal, errors):
        centre = q.local_origin + 0.5 * PIXEL_MM * np.array([*MODULE_SIZE_PX, 0.0])
        for a, b in zip((p.local_fast, p.local_slow, p.local_origin),
                        displaced_frame(q.local_fast, q.local_slow, q.local_origin, centre, e)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    # tens of micrometres in the plane, ~20 normal to it, fractions of a mrad
    rms = np.sqrt(np.mean(errors**2, axis=0))
    assert 0.015 < rms[:2].min() and rms[:2].max() < 0.05
    assert 0.01 < rms[2] < 0.035
    assert 0.15 < rms[3:].min() and rms[3:].max() < 0.5
    assert overlapping_points(truth.experiments[0].detector) == 0


def test_everything_else_is_thaumatin_sweep(truth):
    expt, sweep = truth.experiments[0], thaumatin_sweep(0).experiments[0]
    np.testing.assert_array_equal(expt.crystal.A, sweep.crystal.A)
    np.testing.assert_array_equal(expt.beam.s0, sweep.beam.s0)
    assert expt.identifier == sweep.identifier
    assert expt.scan.image_range == (1, 7200) and expt.scan.oscillation == (0.0, 0.1)


def test_deterministic_by_seed(truth):
    again, other = thaumatin_p6m_60(0), thaumatin_p6m_60(1)
    np.testing.assert_array_equal(panel_frames(again.experiments[0].detector), panel_frames(truth.experiments[0].detector))
    assert again.extra == truth.extra
    assert not np.array_equal(other.extra["true_module_errors"]["values"], truth.extra["true_module_errors"]["values"])


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("thaumatin-p6m-60")
    simulate("thaumatin-p6m-60", str(out), seed=0)
    return out


def test_counts_after_subsampling(simulated):
    """>= 180 000 reflections survive the core's subsampling of the 2-turn scan, and every
    module holds enough to refine it."""
    experiments = read_experiments(str(simulated / "start.expt"))
    table = read_reflections(str(simulated / "observed.refl"))
    assert 440_000 < table.nrows < 490_000
    _, info = select_observations(experiments, table, build_config(), "simulated")
    assert 200_000 < info["n_selected"] < 245_000
    per_module = np.bincount(np.asarray(table["panel"]).astype(int), minlength=60)
    assert per_module.min() > 1_000


def test_simulate_starts_from_the_moved_ideal_grid(simulated):
    truth = thaumatin_p6m_60(0)
    written = read_experiments(str(simulated / "truth.expt"))[0].detector
    np.testing.assert_allclose(local_frames(written), local_frames(truth.experiments[0].detector), rtol=0, atol=1e-15)
    start = read_experiments(str(simulated / "start.expt"))[0].detector
    ideal = truth.start_experiments[0].detector
    # modules keep the ideal local frames; only the root (the default level-0 block) moved
    np.testing.assert_allclose(local_frames(start)[1:], local_frames(ideal)[1:], rtol=0, atol=1e-15)
    assert np.abs(start.root.local_origin - ideal.root.local_origin).max() > 0.3
    facts = json.loads((simulated / "simulation.json").read_text())
    assert facts["true_module_errors"] == truth.extra["true_module_errors"]
    assert {k for k in facts["start_perturbation"] if k.startswith("Detector")} == {
        f"Detector1Group1{n}" for n in ("Dist", "Shift1", "Shift2", "Tau1", "Tau2", "Tau3")}
