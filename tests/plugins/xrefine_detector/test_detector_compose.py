"""Composition of detector parameterisations: frames stay orthonormal, values round-trip, the
Detector agrees with the parameterisation, hierarchies keep their local frames, rebase is a no-op."""

from __future__ import annotations

import json

import numpy as np
import pytest
from detector_cases import (
    P6M_EXPT,
    chain_state,
    local_frames,
    make_cspad_like,
    make_flat_2x2,
    make_single_panel,
    make_three_level,
    make_two_level,
    move_away_from_start,
    read_p6m_by_hand,
)
from xrefine_detector import make_detector_parameterisation


# name -> (detector builder, factory keywords)
CASES = {
    "single": (make_single_panel, {}),
    "flat_2x2": (make_flat_2x2, {}),
    "flat_2x2_multiple": (make_flat_2x2, {"panels": "multiple"}),
    "two_level_0": (make_two_level, {"hierarchy_level": 0}),
    "two_level_1": (make_two_level, {"hierarchy_level": 1}),
    "two_level_2": (make_two_level, {"hierarchy_level": 2}),
    "p6m_0": (lambda: read_p6m_by_hand()[0], {}),
    "p6m_0_1": (lambda: read_p6m_by_hand()[0], {"hierarchy_level": [0, 1]}),
    "two_level_0_1": (make_two_level, {"hierarchy_level": [0, 1]}),
    "two_level_0_1_2": (make_two_level, {"hierarchy_level": [0, 1, 2]}),
    "three_level_1_3": (make_three_level, {"hierarchy_level": [1, 3]}),
    "three_level_0_1_2_3": (make_three_level, {"hierarchy_level": [0, 1, 2, 3]}),
    "cspad_0_1_2_3": (make_cspad_like, {"hierarchy_level": [0, 1, 2, 3]}),
}


@pytest.fixture(params=list(CASES))
def moved(request, beam):
    """A parameterisation moved well away from its starting values."""
    build, kwargs = CASES[request.param]
    param = make_detector_parameterisation(build(), beam, [0], **kwargs)
    move_away_from_start(param)
    return param


def test_axes_stay_unit_and_orthogonal(moved):
    d = moved.state()
    fast, slow = d[:, :, 0], d[:, :, 1]
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(slow, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("ij,ij->i", fast, slow), 0.0, atol=1e-12)


def test_set_then_get_round_trips(moved):
    values = moved.get_free_values() + np.linspace(-1.0, 1.0, moved.num_free)
    moved.set_free_values(values)
    np.testing.assert_array_equal(moved.get_free_values(), values)


def test_state_is_what_the_detector_composes(moved):
    state = moved.state()
    detector = moved.model
    detector.compose()  # recompose every lab frame from the stored local frames
    np.testing.assert_allclose(np.stack([p.d for p in detector]), state, rtol=0, atol=1e-12)
    # and it is each block's rigid motion applied to the frames at setup, deepest level first
    np.testing.assert_allclose(chain_state(moved), state, rtol=0, atol=1e-11)


def shape(frames) -> np.ndarray:
    """Every dot product between panel axes and origin differences: what a rigid motion keeps."""
    frames = frames.copy()
    frames[:, :, 2] -= frames[0, :, 2]
    vectors = frames.transpose(0, 2, 1).reshape(-1, 3)
    return vectors @ vectors.T


def test_rigid_blocks_keep_their_shape(moved):
    """The blocks of the deepest refined level move rigidly (those above carry moving children)."""
    for g in moved.levels[-1]:
        np.testing.assert_allclose(shape(moved.state()[g.panels]), shape(moved._frames0[g.panels]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("build, levels", [(make_three_level, [0, 1, 2, 3]), (make_cspad_like, [1, 2])])
def test_parent_carries_its_children_rigidly(beam, build, levels):
    """Moving only the shallowest level's blocks moves each of them, children and their
    blocks included, as one rigid body; a child's own motion then happens in the moved frame:
    the same child values give the same panel geometry relative to the parent's block."""
    param = make_detector_parameterisation(build(), beam, [0], hierarchy_level=levels)
    n_top = 6 * len(param.levels[0])
    start = np.array([p.value for p in param.parameters])
    # children first, parents at their initial values
    child_shift = np.resize([0.3, -0.2, 0.1, 1.5, -1.0, 2.0], len(start) - n_top)
    for p, v in zip(param.parameters[n_top:], start[n_top:] + child_shift):
        p.value = float(v)
    param.compose()
    children_only = param.state()
    for p, v in zip(param.parameters[:n_top], start[:n_top] + np.resize([2.0, -1.0, 3.0, 4.0, -3.0, 2.5], n_top)):
        p.value = float(v)
    param.compose()
    both = param.state()
    for g in param.levels[0]:
        np.testing.assert_allclose(shape(both[g.panels]), shape(children_only[g.panels]), rtol=0, atol=1e-9)
        assert np.abs(both[g.panels] - children_only[g.panels]).max() > 0.1


def test_rebase_keeps_the_state(moved):
    state = moved.state()
    moved.rebase()
    np.testing.assert_allclose(moved.state(), state, rtol=0, atol=1e-12)
    values = np.array([p.value for p in moved.parameters]).reshape(-1, 6)
    np.testing.assert_array_equal(values[:, 3:], 0.0)
    # composing at the re-initialised values reproduces the same frames
    moved.compose()
    np.testing.assert_allclose(moved.state(), state, rtol=0, atol=1e-10)


def test_rebase_resets_esds(moved):
    for p in moved.parameters:
        p.esd = 0.1
    moved.rebase()
    assert all(p.esd is None for p in moved.parameters)


@pytest.mark.parametrize("level, moved_rows", [(0, [0]), (1, [1, 2, 3, 4]), ([0, 1], [0, 1, 2, 3, 4])])
def test_hierarchy_moves_groups_not_modules(two_level_detector, beam, level, moved_rows):
    """Moving a group rewrites that group's local frame only: panels, and groups below the
    refined levels, keep the local frames the file will be written with.  `moved_rows` are
    the groups in tree order (root, then the 4 quadrants) that move."""
    groups_before, panels_before = local_frames(two_level_detector)
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=level)
    move_away_from_start(param)
    groups_after, panels_after = local_frames(two_level_detector)
    np.testing.assert_array_equal(panels_after, panels_before)
    unchanged = [i for i in range(len(groups_before)) if i not in moved_rows]
    np.testing.assert_array_equal(groups_after[unchanged], groups_before[unchanged])
    assert np.all(np.abs(groups_after[moved_rows] - groups_before[moved_rows]).max(axis=1) > 1e-3)


def test_p6m_level0_keeps_module_local_frames(p6m):
    detector, beam = p6m
    _, panels_before = local_frames(detector)
    param = make_detector_parameterisation(detector, beam, [0])
    move_away_from_start(param)
    _, panels_after = local_frames(detector)
    np.testing.assert_array_equal(panels_after, panels_before)


def test_single_panel_moves_the_panel(single_panel_detector, beam):
    """A one-panel detector moves the panel itself; its root group stays the identity."""
    param = make_detector_parameterisation(single_panel_detector, beam, [0])
    root = single_panel_detector.root
    move_away_from_start(param)
    np.testing.assert_array_equal(root.local_fast, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(root.local_origin, [0.0, 0.0, 0.0])
    assert param.groups[0].node == 0


def test_zero_shift_reproduces_the_detector(p6m):
    detector, beam = p6m
    before = np.stack([p.d for p in detector])
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=1)
    param.compose()
    np.testing.assert_allclose(param.state(), before, rtol=0, atol=1e-12)


def test_written_p6m_keeps_module_local_frames(tmp_path, beam):
    """Refining the whole P6M as one block rewrites only the root group in the written file."""
    io = pytest.importorskip("xrefine.io")
    if not hasattr(io, "write_experiments"):
        pytest.skip("xrefine.io.write_experiments is not written yet")
    experiments = io.read_experiments(P6M_EXPT)
    detector = experiments[0].detector
    hand_read, _ = read_p6m_by_hand()
    np.testing.assert_array_equal(np.stack([p.d for p in detector]), np.stack([p.d for p in hand_read]))

    param = make_detector_parameterisation(detector, experiments[0].beam, [0])
    move_away_from_start(param)
    io.write_experiments(experiments, tmp_path / "moved.expt")

    before = json.loads(P6M_EXPT.read_text())["detector"][0]
    after = json.loads((tmp_path / "moved.expt").read_text())["detector"][0]
    frame_keys = ("fast_axis", "slow_axis", "origin")
    for p0, p1 in zip(before["panels"], after["panels"]):
        for key in frame_keys:
            np.testing.assert_allclose(p1[key], p0[key], rtol=0, atol=1e-12)
    assert np.abs(np.subtract(after["hierarchy"]["origin"], before["hierarchy"]["origin"])).max() > 1.0
    # and reading it back gives the moved geometry
    reread = io.read_experiments(tmp_path / "moved.expt")[0].detector
    np.testing.assert_allclose(np.stack([p.d for p in reread]), param.state(), rtol=0, atol=1e-9)


def test_several_levels_rewrite_only_their_nodes(beam):
    """Refining depths 1 and 2 of the three-level tree rewrites the halves' and sub-groups'
    local frames; the root and the panels keep theirs."""
    detector = make_three_level()
    groups_before, panels_before = local_frames(detector)
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=[1, 2])
    move_away_from_start(param)
    groups_after, panels_after = local_frames(detector)
    np.testing.assert_array_equal(panels_after, panels_before)
    np.testing.assert_array_equal(groups_after[0], groups_before[0])  # tree order: root first
    assert np.all(np.abs(groups_after[1:] - groups_before[1:]).max(axis=1) > 1e-4)


def test_compose_composes_the_detector_once(beam, monkeypatch):
    """The whole tree is composed once per compose, however many blocks move (speed)."""
    detector = make_cspad_like()
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=[0, 1, 2, 3])
    calls = []
    original = type(detector).compose
    monkeypatch.setattr(type(detector), "compose", lambda self: calls.append(1) or original(self))
    param.set_free_values(param.get_free_values() + 0.5)
    assert len(calls) == 1


def test_written_multi_level_detector_reads_back(tmp_path, beam):
    """A CSPAD-like detector moved at all four depths, written and read back: the same panel
    frames and the same local frame at every node."""
    io = pytest.importorskip("xrefine.io")
    from xrefine.models import Experiment, ExperimentList

    detector = make_cspad_like()
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=[0, 1, 2, 3])
    move_away_from_start(param)
    io.write_experiments(ExperimentList([Experiment(beam=beam, detector=detector)]), tmp_path / "cspad.expt")
    reread = io.read_experiments(tmp_path / "cspad.expt")[0].detector
    assert reread.depth() == 3
    np.testing.assert_allclose(np.stack([p.d for p in reread]), param.state(), rtol=0, atol=1e-12)
    for written, read in zip(local_frames(detector), local_frames(reread)):
        np.testing.assert_allclose(read, written, rtol=0, atol=1e-14)
