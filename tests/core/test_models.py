"""Models against DIALS: parallax-corrected pixels and scan frames as dials.refine computed
them, detector frames composed as FORMATS.md says, and the multi-axis goniometer."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from xrefine.geometry import rotation_matrix
from xrefine.io import read_experiments, read_reflections, write_experiments
from xrefine.models import Detector, DetectorGroup, Goniometer, Panel, Scan

DATA = Path(__file__).resolve().parents[1] / "data"
EIGER = DATA / "lysozyme-eiger"
P6M = DATA / "p6m-modules-small" / "refined.expt"


@pytest.fixture(scope="module")
def dials_predictions():
    """refined.expt and dials.refine's own xyzcal.mm / xyzcal.px for it."""
    (experiment,) = read_experiments(EIGER / "refined.expt")
    table = read_reflections(EIGER / "refined.refl")
    return experiment, table["xyzcal.mm"], table["xyzcal.px"]


# ------------------------------------------------------------------------------- pixels, frames
def test_mm_to_px_reproduces_dials_parallax_corrected_pixels(dials_predictions):
    experiment, mm, px = dials_predictions
    panel = experiment.detector[0]
    assert panel.parallax and panel.mu > 0 and panel.thickness > 0
    calc = panel.mm_to_px(mm[:, :2])
    assert np.abs(calc - px[:, :2]).max() < 1e-6
    # the correction matters at this size: without it the pixels are off by far more
    assert np.abs(mm[:, :2] / np.array(panel.pixel_size) - px[:, :2]).max() > 0.1


def test_px_to_mm_is_dials_approximate_inverse(dials_predictions):
    experiment, mm, px = dials_predictions
    panel = experiment.detector[0]
    assert np.abs(panel.px_to_mm(px[:, :2]) - mm[:, :2]).max() < 1e-3


def test_frame_from_angle_reproduces_dials_frames(dials_predictions):
    experiment, mm, px = dials_predictions
    scan = experiment.scan
    z = scan.frame_from_angle(mm[:, 2])
    assert np.abs(z - px[:, 2]).max() < 1e-9
    np.testing.assert_allclose(scan.angle_from_frame(px[:, 2]), mm[:, 2], rtol=0, atol=1e-12)
    assert scan.array_range == (0, 300)
    assert scan.frame_from_angle(math.radians(0.2 * 10.5)) == pytest.approx(10.5)


def test_single_image_scan_frames():
    scan = Scan(image_range=(7, 7), oscillation=(30.0, 0.5))
    assert scan.array_range == (6, 7)
    assert scan.frame_from_angle(math.radians(30.25)) == pytest.approx(6.5)
    assert scan.oscillation_range_rad == pytest.approx((math.radians(30.0), math.radians(30.5)))


# ------------------------------------------------------------------------- detector hierarchy
def compose_by_hand(detector_json):
    """Laboratory frames of every panel, composed from the file as FORMATS.md describes."""
    frames = {}

    def walk(node, P, o):
        f = P @ (np.array(node["fast_axis"]) / np.linalg.norm(node["fast_axis"]))
        s = P @ (np.array(node["slow_axis"]) / np.linalg.norm(node["slow_axis"]))
        origin = o + P @ np.array(node["origin"])
        basis = np.column_stack([f, s, np.cross(f, s)])
        for child in node.get("children", []):
            if "panel" in child:
                panel = detector_json["panels"][child["panel"]]
                pf = basis @ (np.array(panel["fast_axis"]) / np.linalg.norm(panel["fast_axis"]))
                ps = basis @ (np.array(panel["slow_axis"]) / np.linalg.norm(panel["slow_axis"]))
                frames[child["panel"]] = (pf, ps, origin + basis @ np.array(panel["origin"]))
            else:
                walk(child, basis, origin)

    walk(detector_json["hierarchy"], np.eye(3), np.zeros(3))
    return frames


def test_p6m_panels_have_the_laboratory_frames_composed_by_hand():
    with open(P6M) as f:
        detector_json = json.load(f)["detector"][0]
    (experiment,) = read_experiments(P6M)
    detector = experiment.detector
    by_hand = compose_by_hand(detector_json)
    assert len(detector) == len(by_hand) == 60
    for i, (f, s, o) in by_hand.items():
        np.testing.assert_allclose(detector[i].fast, f, rtol=0, atol=1e-14)
        np.testing.assert_allclose(detector[i].slow, s, rtol=0, atol=1e-14)
        np.testing.assert_allclose(detector[i].origin, o, rtol=0, atol=1e-10)
    # the modules really sit in different places, away from the root's origin
    origins = np.array([detector[i].origin for i in range(60)])
    assert np.ptp(origins[:, 0]) > 300 and np.ptp(origins[:, 1]) > 300
    assert not np.allclose(detector[0].origin, detector_json["panels"][0]["origin"])


def test_write_read_keeps_local_frames_identical(tmp_path):
    experiments = read_experiments(P6M)
    write_experiments(experiments, tmp_path / "p6m.expt")
    before, after = experiments[0].detector, read_experiments(tmp_path / "p6m.expt")[0].detector
    nodes = [(before.root, after.root)] + list(zip(before.panels, after.panels, strict=True))
    for a, b in nodes:
        for attribute in ("local_fast", "local_slow", "local_origin", "fast", "slow", "origin"):
            assert np.array_equal(getattr(a, attribute), getattr(b, attribute))


def test_set_lab_frame_lands_exactly_under_a_slightly_skew_parent():
    # the parent's axes are perpendicular only to 1e-7 (dxtbx accepts up to 1e-7): the local
    # frame must come from the inverse of the parent matrix, not its transpose
    slow = np.array([0.0, -1.0, 0.0]) + np.array([1e-7, 0.0, 0.0])
    group = DetectorGroup(local_fast=[1.0, 0, 0], local_slow=slow, local_origin=[-200.0, 200.0, -300.0], children=[0])
    panel = Panel("p", [1.0, 0, 0], [0, 1.0, 0], [5.0, 6.0, 0.0], (100, 100), (0.1, 0.1))
    detector = Detector([panel], root=group)
    f = rotation_matrix([0.2, 0.3, 0.9], 0.01) @ detector[0].fast
    s = rotation_matrix([0.2, 0.3, 0.9], 0.01) @ detector[0].slow
    o = detector[0].origin + [150.0, -120.0, 2.0]
    detector.set_lab_frame(0, f, s, o)
    got = detector.lab_frame(0)
    np.testing.assert_allclose(got[0], f, rtol=0, atol=1e-14)
    np.testing.assert_allclose(got[1], s, rtol=0, atol=1e-14)
    np.testing.assert_allclose(got[2], o, rtol=0, atol=1e-11)


def test_moving_a_group_carries_its_panels_rigidly():
    (experiment,) = read_experiments(P6M)
    detector = experiment.detector
    relative_before = [detector[i].local_origin.copy() for i in range(len(detector))]
    f, s, o = detector.lab_frame(detector.root)
    R = rotation_matrix([0.0, 1.0, 0.0], 0.02)
    detector.set_lab_frame(detector.root, R @ f, R @ s, o + [1.0, 2.0, 3.0])
    for i in range(len(detector)):
        np.testing.assert_allclose(detector[i].local_origin, relative_before[i], atol=1e-9)
    panel_origin = detector[10].origin
    expected = o + [1.0, 2.0, 3.0] + R @ (compose_by_hand(json.load(open(P6M))["detector"][0])[10][2] - o)
    np.testing.assert_allclose(panel_origin, expected, atol=1e-9)


# --------------------------------------------------------------------------------- goniometer
def test_multi_axis_goniometer_composes_as_formats_md_says():
    axes = [[1.0, 0.0, 0.0], [0.642788, 0.766044, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    angles = [10.0, -40.0, 25.0, 5.0]
    g = Goniometer.multi_axis(axes, angles, ["a", "b", "c", "d"], scan_axis=1)
    R = [rotation_matrix(a, math.radians(t)) for a, t in zip(axes, angles, strict=True)]
    np.testing.assert_allclose(g.fixed_rotation, R[0], atol=1e-15)
    np.testing.assert_allclose(g.setting_rotation, R[3] @ R[2], atol=1e-15)
    np.testing.assert_array_equal(g.rotation_axis, axes[1])
    np.testing.assert_allclose(
        g.rotation_axis_lab, R[3] @ R[2] @ np.array(axes[1]) / np.linalg.norm(axes[1]), atol=1e-15
    )


def test_fixed_wavelength_survives_a_direction_change():
    """Regression: 1/|s0| used to change a fixed wavelength in its last digits."""
    from xrefine.geometry import rotation_matrix
    from xrefine.models import Beam

    beam = Beam(direction=[0.0, 0.0, 1.0], wavelength=0.9763)
    beam.set_s0(rotation_matrix([0.0, 1.0, 0.0], 1e-3) @ beam.s0)
    assert beam.wavelength == 0.9763


def test_beam_written_with_its_kind(tmp_path):
    """Regression: beams built in code were written without __id__, which dxtbx needs."""
    import json

    from xrefine.io import write_experiments
    from xrefine.models import Beam, Experiment, ExperimentList

    write_experiments(ExperimentList([Experiment(beam=Beam([0.0, 0.0, 1.0], 1.0), identifier="x")]), str(tmp_path / "b.expt"))
    assert json.loads((tmp_path / "b.expt").read_text())["beam"][0]["__id__"] == "monochromatic"
