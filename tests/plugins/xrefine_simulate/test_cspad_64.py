"""The cspad-64 preset: a 64-panel, four-level CSPAD-like detector with true quadrant and
sensor errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xrefine.plugins
from preset_checks import local_frames, observed, overlapping_points, panel_frames
from xrefine.geometry import rotation_matrix
from xrefine.io import read_experiments, write_experiments
from xrefine.models import DetectorGroup
from xrefine_simulate.cspad import ASIC_GAP_PX, ASIC_SIZE_PX, PIXEL_MM
from xrefine_simulate.presets import CSPAD_QUADRANT_ERROR, CSPAD_SENSOR_ERROR, cspad_64


@pytest.fixture(scope="module")
def truth():
    return cspad_64(0)


def test_registered():
    assert xrefine.plugins.registrations("xrefine_simulation_presets")["cspad-64"].build is cspad_64


def test_four_level_hierarchy(truth):
    detector = truth.experiments[0].detector
    assert len(detector) == 64 and detector.depth() == 3
    assert [len(detector.groups_at_level(k)) for k in range(4)] == [1, 4, 32, 64]
    assert all(isinstance(n, DetectorGroup) for k in (0, 1, 2) for n in detector.groups_at_level(k))
    assert detector.groups_at_level(3) == list(range(64))
    for p in detector:
        assert p.image_size == ASIC_SIZE_PX == (194, 185) and p.pixel_size == (PIXEL_MM, PIXEL_MM) == (0.11, 0.11)
    assert detector[17].name == "q1-s0-a1"


def test_local_frames(truth):
    """ASICs sit exactly in their sensor; quadrants are quarter turns of one another about the
    detector normal (before their errors); the ideal start has no errors at all."""
    detector = truth.experiments[0].detector
    ideal = truth.start_experiments[0].detector
    pitch = PIXEL_MM * (ASIC_SIZE_PX[0] + ASIC_GAP_PX)
    for det in (detector, ideal):
        for k, p in enumerate(det):
            np.testing.assert_array_equal(p.local_fast, [1.0, 0.0, 0.0])
            np.testing.assert_allclose(p.local_origin, [(k % 2) * pitch, 0.0, 0.0], rtol=0, atol=1e-12)
    quadrants = ideal.groups_at_level(1)
    for q, g in enumerate(quadrants):
        turn = rotation_matrix([0.0, 0.0, 1.0], 0.5 * np.pi * q)
        np.testing.assert_allclose(g.local_fast, turn[:, 0], atol=1e-15)
        np.testing.assert_allclose(g.local_slow, turn[:, 1], atol=1e-15)
        # the same sensor layout in every quadrant
        np.testing.assert_array_equal(local_frames_of(g), local_frames_of(quadrants[0]))
    true_quadrants = detector.groups_at_level(1)
    assert 0 < np.abs(true_quadrants[2].local_origin - quadrants[2].local_origin).max() < 1.0
    assert overlapping_points(detector) == 0 and overlapping_points(ideal) == 0


def local_frames_of(group) -> np.ndarray:
    return np.array([np.concatenate([c.local_fast, c.local_slow, c.local_origin]) for c in group.children])


def test_recorded_errors(truth):
    json.dumps(truth.extra)
    quadrant, sensor = truth.extra["true_quadrant_errors"], truth.extra["true_sensor_errors"]
    assert np.shape(quadrant["values"]) == (4, 6) and quadrant["sigma"] == CSPAD_QUADRANT_ERROR
    assert np.shape(sensor["values"]) == (32, 6) and sensor["sigma"] == CSPAD_SENSOR_ERROR


def test_deterministic_by_seed(truth):
    again, other = cspad_64(0), cspad_64(1)
    np.testing.assert_array_equal(panel_frames(again.experiments[0].detector), panel_frames(truth.experiments[0].detector))
    assert again.extra == truth.extra and again.experiments[0].identifier == truth.experiments[0].identifier
    assert other.extra != truth.extra


def test_counts_on_every_panel(truth):
    table, _ = observed(truth)
    assert 15_000 < table.nrows < 21_000
    per_panel = np.bincount(np.asarray(table["panel"]).astype(int), minlength=64)
    assert per_panel.min() >= 40


def test_written_detector_reads_back(truth, tmp_path):
    write_experiments(truth.experiments, str(tmp_path / "cspad.expt"))
    detector = read_experiments(str(tmp_path / "cspad.expt"))[0].detector
    assert detector.depth() == 3
    np.testing.assert_array_equal(local_frames(detector), local_frames(truth.experiments[0].detector))
    np.testing.assert_allclose(panel_frames(detector), panel_frames(truth.experiments[0].detector), rtol=0, atol=1e-13)
