"""make_detector_parameterisation: block choice, reference points, names, fixing, errors."""

from __future__ import annotations

import numpy as np
import pytest
from detector_cases import move_away_from_start
from xrefine.errors import InputError
from xrefine.models import Detector, DetectorGroup, Panel
from xrefine_detector import PARAMETER_NAMES, make_detector_parameterisation


def _centre(panel) -> np.ndarray:
    w, h = panel.size_mm
    return panel.origin + 0.5 * w * panel.fast + 0.5 * h * panel.slow


def test_single_panel_reference_is_the_panel_centre(single_panel_detector, beam):
    param = make_detector_parameterisation(single_panel_detector, beam, [0, 1])
    panel = single_panel_detector[0]
    assert param.kind == "detector.d"
    assert param.experiment_ids == [0, 1]
    assert [p.name for p in param.parameters] == list(PARAMETER_NAMES)
    assert [p.unit for p in param.parameters] == ["mm"] * 3 + ["mrad"] * 3
    dist, shift1, shift2 = (p.value for p in param.parameters[:3])
    np.testing.assert_allclose(dist, panel.origin @ panel.normal, rtol=1e-12)
    np.testing.assert_allclose(dist * panel.normal + shift1 * panel.fast + shift2 * panel.slow, _centre(panel), atol=1e-9)


def test_automatic_multi_panel_is_one_hierarchical_group(p6m):
    detector, beam = p6m
    param = make_detector_parameterisation(detector, beam, [0])
    assert [p.name for p in param.parameters] == ["Group1" + n for n in PARAMETER_NAMES]
    (group,) = param.groups
    assert group.node is detector.root
    # the pivot is where the ray from the lab origin through the mean module centre meets the
    # root plane; the modules lie in that plane, so it is the mean module centre itself
    centroid = np.mean([_centre(p) for p in detector], axis=0)
    np.testing.assert_allclose(group.reference_point, centroid, atol=1e-9)
    root = detector.root
    np.testing.assert_allclose(param.parameters[0].value, root.origin @ np.cross(root.fast, root.slow), rtol=1e-9)


def test_root_through_lab_origin_pivots_at_lab_origin(flat_2x2_detector, beam):
    """DIALS falls back to the lab origin when the group plane contains it (a flat detector
    whose root is the identity frame at zero): rotations then turn about lab axes."""
    param = make_detector_parameterisation(flat_2x2_detector, beam, [0])
    np.testing.assert_array_equal(param.groups[0].reference_point, 0.0)
    np.testing.assert_array_equal([p.value for p in param.parameters], 0.0)


def _beam_hit(panel, beam) -> np.ndarray:
    n = panel.normal
    return beam.s0 * (panel.origin @ n) / (beam.s0 @ n)


def test_multiple_pivots_at_the_panel_nearest_the_beam(flat_2x2_detector, beam):
    # slide the array (root frame is the identity, so local = lab) to centre panel 3 on the beam
    shift = _centre(flat_2x2_detector[3]) - _beam_hit(flat_2x2_detector[3], beam)
    for p in flat_2x2_detector:
        p.local_origin = p.local_origin - shift
    flat_2x2_detector.compose()
    param = make_detector_parameterisation(flat_2x2_detector, beam, [0], panels="multiple")
    assert [p.name for p in param.parameters] == list(PARAMETER_NAMES)
    (group,) = param.groups
    assert group.node is flat_2x2_detector.root
    np.testing.assert_allclose(group.reference_point, _centre(flat_2x2_detector[3]), atol=1e-9)
    mid = flat_2x2_detector[3]
    np.testing.assert_allclose(param.parameters[0].value, mid.origin @ mid.normal, rtol=1e-12)


def test_level_one_blocks_are_named_and_separate(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=1)
    assert [p.name for p in param.parameters][::6] == [f"Group{i}Dist" for i in range(1, 5)]
    assert [g.node for g in param.groups] == two_level_detector.groups_at_level(1)
    move_away_from_start(param)
    d = param.state_derivatives()
    for panel in range(len(two_level_detector)):
        columns = param.panel_columns(panel)
        np.testing.assert_array_equal(columns, 6 * (panel // 2) + np.arange(6))
        others = np.setdiff1d(np.arange(param.num_free), columns)
        assert np.all(d[others, panel] == 0.0)
        assert np.all(np.abs(d[columns, panel]).max(axis=(1, 2)) > 0.0)


def test_panel_columns_skip_fixed_parameters(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=1, fix="orientation")
    assert param.num_free == 12
    np.testing.assert_array_equal(param.panel_columns(0), [0, 1, 2])
    np.testing.assert_array_equal(param.panel_columns(5), [6, 7, 8])
    assert param.state_derivatives().shape == (12, 8, 3, 3)


def test_level_two_moves_panels(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=2)
    assert [g.node for g in param.groups] == list(range(8))
    # a panel block pivots about its own centre
    for g in param.groups:
        np.testing.assert_allclose(g.reference_point, _centre(two_level_detector[g.node]), atol=1e-9)


@pytest.mark.parametrize(
    "fix, fixed",
    [
        ((), []),
        ("all", list(PARAMETER_NAMES)),
        ("position", ["Dist", "Shift1", "Shift2"]),
        ("orientation", ["Tau1", "Tau2", "Tau3"]),
        ("distance", ["Dist", "Tau2", "Tau3"]),
        (["Shift", 5], ["Shift1", "Shift2", "Tau3"]),
        (["Tau1", "3"], ["Tau1"]),
    ],
)
def test_fix_options(single_panel_detector, beam, fix, fixed):
    param = make_detector_parameterisation(single_panel_detector, beam, [0], fix=fix)
    assert [p.name for p in param.parameters if p.fixed] == fixed
    assert param.num_free == 6 - len(fixed)


def test_fix_matches_parts_of_group_names(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=1, fix=["Group2", "Dist"])
    fixed = [p.name for p in param.parameters if p.fixed]
    assert fixed == ["Group1Dist"] + [f"Group2{n}" for n in PARAMETER_NAMES] + ["Group3Dist", "Group4Dist"]


@pytest.mark.parametrize("fix", ["Shift3", 6, ["position", "nonsense"]])
def test_fix_rejects_what_matches_nothing(single_panel_detector, beam, fix):
    with pytest.raises(InputError, match="Detector1"):
        make_detector_parameterisation(single_panel_detector, beam, [0], fix=fix)


def test_rejects_bad_choices(flat_2x2_detector, two_level_detector, beam):
    with pytest.raises(InputError, match="single"):
        make_detector_parameterisation(flat_2x2_detector, beam, [0], panels="single")
    with pytest.raises(InputError, match="panels"):
        make_detector_parameterisation(flat_2x2_detector, beam, [0], panels="rigid")
    with pytest.raises(InputError, match="beam"):
        make_detector_parameterisation(flat_2x2_detector, None, [0], panels="multiple")
    with pytest.raises(InputError, match="hierarchy_level=3"):
        make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=3)
    with pytest.raises(InputError, match="hierarchy_level"):
        make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=-1)


def test_level_deeper_than_one_branch(beam):
    """A panel directly under the root has nothing at depth 2: say so rather than leave it fixed."""
    panels = [Panel(f"p{i}", [1, 0, 0], [0, -1, 0], [40.0 * i, 0, -200], (100, 100), (0.1, 0.1)) for i in range(3)]
    root = DetectorGroup(children=[DetectorGroup("pair", children=[0, 1]), 2])
    detector = Detector(panels, root)
    assert make_detector_parameterisation(detector, beam, [0], hierarchy_level=1).num_free == 12
    with pytest.raises(InputError, match=r"panel\(s\) \[2\]"):
        make_detector_parameterisation(detector, beam, [0], hierarchy_level=2)
