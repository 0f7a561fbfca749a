"""Full-scan prediction (`predict_all`)."""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.geometry import unit
from xrefine.io import read_reflections, write_reflections
from xrefine.models import Detector, Panel
from xrefine.predictor import ExperimentState
from xrefine.reflections import Flags

from xrefine_rotation import RotationPredictor, predict_all
from xrefine_rotation.full_scan import detector_d_min


def d_spacing(experiment, hkl):
    return 1.0 / np.linalg.norm(np.asarray(hkl, dtype=float) @ experiment.crystal.A.T, axis=1)


def test_table_contents(sim, tmp_path):
    e = sim.make_experiment()
    table = predict_all(e, 2.0)
    n = table.nrows
    assert n > 500
    assert set(table.keys()) >= {"miller_index", "id", "panel", "entering", "s1", "xyzcal.mm", "xyzcal.px", "flags"}
    assert np.all(table["id"] == 0) and np.all(table["panel"] == 0)
    assert np.all(table["flags"] == Flags.predicted)
    z = table["xyzcal.px"][:, 2]
    assert np.all(np.diff(z) >= 0), "sorted by frame"
    np.testing.assert_allclose(z, e.scan.frame_from_angle(table["xyzcal.mm"][:, 2]), atol=1e-9)
    lo, hi = e.scan.oscillation_range_rad
    assert np.all((table["xyzcal.mm"][:, 2] >= lo) & (table["xyzcal.mm"][:, 2] <= hi))
    w, h = e.detector[0].size_mm
    xy = table["xyzcal.mm"][:, :2]
    assert np.all((xy >= 0) & (xy <= [w, h]))
    np.testing.assert_allclose(table["xyzcal.px"][:, :2], xy / 0.172, rtol=1e-12)
    assert np.all(d_spacing(e, table["miller_index"]) >= 2.0)
    s0 = e.beam.s0
    np.testing.assert_allclose(np.linalg.norm(table["s1"], axis=1), np.linalg.norm(s0), rtol=1e-12)
    # entering flags follow the DIALS convention
    assert np.all((table["s1"] @ np.cross(s0, e.goniometer.rotation_axis_lab) < 0) == table["entering"])
    # re-predicting with predict() gives the same centroids
    block = RotationPredictor().predict(
        ExperimentState.from_experiment(e, 0), table["miller_index"], table["entering"], table["xyzcal.mm"][:, 2]
    )
    np.testing.assert_allclose(block.xyz, table["xyzcal.mm"], rtol=0, atol=1e-9)
    # the table is a valid DIALS reflection table
    write_reflections(table, tmp_path / "predicted.refl")
    back = read_reflections(tmp_path / "predicted.refl")
    np.testing.assert_array_equal(back["miller_index"], table["miller_index"])
    np.testing.assert_array_equal(back["xyzcal.px"], table["xyzcal.px"])


def test_every_reflection_once_per_solution(sim):
    """Brute force: every index to d_min whose solution lies in the scan and hits the panel is
    predicted, exactly once (a 180-degree scan meets each solution at most once)."""
    e = sim.make_experiment()
    table = predict_all(e, 2.5)
    key = {tuple(h) + (en,) for h, en in zip(table["miller_index"].tolist(), table["entering"])}
    assert len(key) == table.nrows
    r = np.arange(-8, 9)
    hkl = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    hkl = hkl[np.any(hkl != 0, axis=1)]
    hkl = hkl[d_spacing(e, hkl) >= 2.5]
    assert d_spacing(e, [[9, 0, 0], [0, 9, 0], [0, 0, 9]]).max() < 2.5  # the box holds them all
    state = ExperimentState.from_experiment(e, 0)
    expected = set()
    for entering in (True, False):
        block = RotationPredictor().predict(state, hkl, np.full(len(hkl), entering), None)
        phi = block.xyz[:, 2]
        w, h = e.detector[0].size_mm
        hit = block.valid & (phi <= np.pi) & np.all((block.xyz[:, :2] >= 0) & (block.xyz[:, :2] <= [w, h]), axis=1)
        expected |= {tuple(x) + (entering,) for x in hkl[hit].tolist()}
    assert key == expected


def test_only_centring_absences_are_removed(sim):
    """As DIALS (indices generated in the derived Patterson group): screw-axis absences are
    predicted, centring absences are not; the simulator drops both."""
    from xrefine.simulation import drop_systematic_absences

    e = sim.make_experiment(lattice="orthorhombic")
    p1 = predict_all(e, 2.0)
    e.crystal.space_group_hall_symbol = " P 2ac 2ab"  # P 21 21 21
    p212121 = predict_all(e, 2.0)
    np.testing.assert_array_equal(p212121["miller_index"], p1["miller_index"])
    hkl = p1["miller_index"]
    on_axis = np.sum(hkl != 0, axis=1) == 1
    odd = on_axis & np.any(hkl % 2 == 1, axis=1)
    assert odd.any()
    observed = drop_systematic_absences([e], p212121)
    assert observed.nrows == p1.nrows - odd.sum()
    axial = observed["miller_index"][np.sum(observed["miller_index"] != 0, axis=1) == 1]
    assert np.all(axial % 2 == 0)
    e.crystal.space_group_hall_symbol = " I 2 2"  # I 2 2 2: h + k + l odd extinguished
    i222 = predict_all(e, 2.0)
    assert i222.nrows == np.sum(hkl.sum(axis=1) % 2 == 0)
    assert np.all(i222["miller_index"].sum(axis=1) % 2 == 0)


def test_default_d_min_is_the_detector_corner(sim):
    e = sim.make_experiment()
    d_min = detector_d_min(e)
    panel = e.detector[0]
    w, h = panel.size_mm  # (no parallax correction on this panel: the corner pixels are these)
    assert not panel.parallax or panel.mu <= 0
    corners = [panel.origin + x * panel.fast + y * panel.slow for x in (0, w) for y in (0, h)]
    two_theta = max(np.arccos(unit(c) @ unit(e.beam.s0)) for c in corners)
    assert d_min == pytest.approx(e.beam.wavelength / (2 * np.sin(two_theta / 2)), rel=1e-12)
    table = predict_all(e)
    d = d_spacing(e, table["miller_index"])
    assert d.min() >= d_min and d.min() < 1.05 * d_min


def test_first_panel_in_order_wins(sim):
    """Two overlapping half-width panels: hits in the overlap go to panel 0."""
    e = sim.make_experiment()
    p = e.detector[0]
    size = (p.image_size[0] // 2, p.image_size[1])
    quarter = 0.5 * size[0] * p.pixel_size[0]  # half of a half-width panel
    left = Panel("left", p.fast, p.slow, p.origin + quarter * p.fast, size, p.pixel_size)
    right = Panel("right", p.fast, p.slow, p.origin + 2 * quarter * p.fast, size, p.pixel_size)
    e.detector = Detector([left, right])
    table = predict_all(e, 1.5)
    panel = table["panel"]
    assert set(np.unique(panel).tolist()) == {0, 1}
    # position on the left panel's x axis: the overlap is [quarter, 2 quarter] mm there
    x_left = np.where(panel == 0, table["xyzcal.mm"][:, 0], table["xyzcal.mm"][:, 0] + quarter)
    np.testing.assert_array_equal(panel == 1, x_left > 2 * quarter)
    assert np.any((panel == 0) & (x_left > quarter))  # the overlap is populated


def test_overlapping_panels_the_nearest_along_the_normal_wins(sim):
    """dxtbx's Detector.get_ray_intersection: of the panels a ray meets, the one with the
    largest w (D s1), i.e. the nearer panel, whatever the panel order."""
    import copy

    from xrefine.models import Detector, Panel

    e = sim.make_experiment(image_range=(1, 300))
    far = e.detector[0]
    centre = far.origin + 0.5 * (far.size_mm[0] * far.fast + far.size_mm[1] * far.slow)
    near_origin = 0.5 * centre - 0.25 * (far.size_mm[0] * far.fast + far.size_mm[1] * far.slow)
    near = Panel("near", far.fast, far.slow, near_origin, far.image_size, far.pixel_size)
    only_near = copy.deepcopy(e)
    only_near.detector = Detector([copy.deepcopy(near)])
    both = copy.deepcopy(e)
    both.detector = Detector([copy.deepcopy(far), copy.deepcopy(near)])
    t_near, t_both, t_far = predict_all(only_near, 2.5), predict_all(both, 2.5), predict_all(e, 2.5)

    def keyed(t, panel=None):
        rows = np.ones(t.nrows, bool) if panel is None else np.asarray(t["panel"]) == panel
        return {(tuple(h), bool(en)): x for h, en, x in zip(t["miller_index"][rows], t["entering"][rows], t["xyzcal.px"][rows])}

    on_near = keyed(t_both, 1)
    assert on_near.keys() == keyed(t_near).keys() and len(on_near) > 100
    for k, x in keyed(t_near).items():
        np.testing.assert_allclose(on_near[k], x, rtol=0, atol=1e-9)
    # the far panel keeps only what the near one does not cover
    assert keyed(t_both, 0).keys() == keyed(t_far).keys() - on_near.keys()


def test_panel_bounds_and_corners_follow_dxtbx_with_parallax(sim):
    """dxtbx judges a point on the panel by [0, |px_to_mm(image_size)|), parallax included, and
    takes the resolution limit at the corner pixels converted the same way."""
    e = sim.make_experiment(image_range=(1, 300))
    panel = e.detector[0]
    plain_d_min = detector_d_min(e)
    panel.thickness, panel.mu, panel.parallax = 0.45, 3.9, True
    w, h = panel.valid_extent_mm()
    assert (w, h) != pytest.approx(panel.size_mm, rel=0, abs=1e-4)  # the correction matters
    np.testing.assert_allclose([w, h], np.abs(panel.px_to_mm(np.array([panel.image_size], float))[0]))
    d_min = detector_d_min(e)
    assert d_min != plain_d_min
    lab = panel.origin + panel.corners_mm() @ np.array([panel.fast, panel.slow])
    two_theta = np.arccos(np.clip(lab @ unit(e.beam.s0) / np.linalg.norm(lab, axis=1), -1, 1)).max()
    assert d_min == pytest.approx(e.beam.wavelength / (2 * np.sin(two_theta / 2)), rel=1e-12)
    table = predict_all(e, 2.5)
    xy = table["xyzcal.mm"][:, :2]
    assert np.all((xy >= 0) & (xy < [w, h]))
