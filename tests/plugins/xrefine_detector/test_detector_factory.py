"""make_detector_parameterisation: block choice, reference points, names, fixing, errors."""

from __future__ import annotations

import numpy as np
import pytest
from detector_cases import make_cspad_like, make_two_level, move_away_from_start
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


# --- several levels at once
def test_several_levels_are_named_by_level_and_group(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=[1, 0])
    names = [param.name + p.name for p in param.parameters]
    assert names[:6] == ["Detector1Level0Group1" + n for n in PARAMETER_NAMES]
    assert names[6::6] == [f"Detector1Level1Group{i}Dist" for i in range(1, 5)]
    assert len(set(names)) == len(names) == 30
    assert [len(level) for level in param.levels] == [1, 4]
    assert param.groups[0].node is two_level_detector.root
    # one level keeps DIALS's names
    single = make_detector_parameterisation(make_two_level(), beam, [0], hierarchy_level=[1])
    assert [p.name for p in single.parameters][::6] == [f"Group{i}Dist" for i in range(1, 5)]


def test_panel_columns_are_the_panels_block_at_every_level(beam):
    """Parameters in order: level 0 (6), level 1 (4 quadrants x 6), level 3 (64 ASICs x 6); a
    panel's columns are its own block's at each level, fixed ones left out."""
    detector = make_cspad_like()
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=[0, 1, 3], fix="Level1Group2Tau")
    move_away_from_start(param)
    d = param.state_derivatives()
    fixed = np.array([p.fixed for p in param.parameters])
    np.testing.assert_array_equal(np.flatnonzero(fixed), [15, 16, 17])
    free_index = np.cumsum(~fixed) - 1
    for panel in range(len(detector)):
        rows = np.concatenate([np.arange(6), 6 + 6 * (panel // 16) + np.arange(6), 30 + 6 * panel + np.arange(6)])
        columns = param.panel_columns(panel)
        np.testing.assert_array_equal(columns, free_index[rows[~fixed[rows]]])
        others = np.setdiff1d(np.arange(param.num_free), columns)
        assert np.all(d[others, panel] == 0.0)
        assert np.all(np.abs(d[columns, panel]).max(axis=(1, 2)) > 0.0)


def test_fix_one_groups_tau_among_many(p6m):
    """'Group1Tau' fixes Group1's three angles only, not those of Group10-Group19."""
    detector, beam = p6m
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=1, fix=["Group1Tau", "Group12Dist"])
    assert [p.name for p in param.parameters if p.fixed] == ["Group1Tau1", "Group1Tau2", "Group1Tau3", "Group12Dist"]
    several = make_detector_parameterisation(detector, beam, [0], hierarchy_level=[0, 1], fix="Level1Group3Tau")
    assert [p.name for p in several.parameters if p.fixed] == [f"Level1Group3Tau{i}" for i in (1, 2, 3)]


def test_fix_groups_by_block_name_or_node_name(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=[0, 1],
                                           fix_groups=["Level1Group2", "quadrant3"])
    fixed = [p.name for p in param.parameters if p.fixed]
    assert fixed == [f"Level1Group2{n}" for n in PARAMETER_NAMES] + [f"Level1Group4{n}" for n in PARAMETER_NAMES]
    by_detector = make_detector_parameterisation(make_two_level(), beam, [0], hierarchy_level=1,
                                                 fix_groups=["Detector1Group1", "Detector2Group2", "Detector12Group3"])
    assert [p.name for p in by_detector.parameters if p.fixed] == [f"Group1{n}" for n in PARAMETER_NAMES]
    second = make_detector_parameterisation(make_two_level(), beam, [1], name="Detector2", hierarchy_level=1,
                                            fix_groups=["Detector1Group1", "Detector2Group2"])
    assert [p.name for p in second.parameters if p.fixed] == [f"Group2{n}" for n in PARAMETER_NAMES]
    panels = make_detector_parameterisation(make_two_level(), beam, [0], hierarchy_level=2, fix_groups=["q2p1"])
    assert [p.name for p in panels.parameters if p.fixed] == [f"Group6{n}" for n in PARAMETER_NAMES]
    with pytest.raises(InputError, match="fix_groups entry 'Group9'.*Group1"):
        make_detector_parameterisation(make_two_level(), beam, [0], hierarchy_level=1, fix_groups=["Group9"])
    with pytest.raises(InputError, match="fix_groups entry 'Group1'"):
        # a group name matches a block, never a part of one
        make_detector_parameterisation(make_two_level(), beam, [0], hierarchy_level=[0, 1], fix_groups=["Group1"])


@pytest.mark.parametrize("levels", [[], [0, -1], [0.5], ["1"], True])
def test_rejects_bad_level_lists(two_level_detector, beam, levels):
    with pytest.raises(InputError, match="hierarchy_level"):
        make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=levels)


def test_every_listed_level_must_reach_every_panel(two_level_detector, beam):
    with pytest.raises(InputError, match="hierarchy_level=3"):
        make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=[0, 3])


@pytest.mark.parametrize("value, parsed", [("1", 1), ("0,1", [0, 1]), ("2 1 1", [1, 2]), (1, 1), ([0, 2], [0, 2])])
def test_hierarchy_level_option(value, parsed):
    from xrefine.config import build_config

    assert build_config(overrides={"detector.hierarchy_level": value})["detector.hierarchy_level"] == parsed
    assert build_config()["detector.hierarchy_level"] == 0


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "", [0.5]])
def test_hierarchy_level_option_rejects(value):
    from xrefine.config import build_config

    with pytest.raises(InputError, match="detector.hierarchy_level"):
        build_config(overrides={"detector.hierarchy_level": value})


def test_plugin_builds_several_levels_and_fixed_groups(beam):
    from xrefine.config import build_config
    from xrefine.models import Experiment, ExperimentList
    from xrefine_detector.plugin import build

    experiments = ExperimentList([Experiment(beam=beam, detector=make_two_level())])
    config = build_config(None, ["detector.hierarchy_level=0,1", "detector.fix_groups=Level1Group1"])
    (param,) = build(experiments, config)
    assert param.num_free == 30 - 6 and param.parameters[6].name == "Level1Group1Dist" and param.parameters[6].fixed
