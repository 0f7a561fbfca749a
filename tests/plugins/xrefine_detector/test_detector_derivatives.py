"""Finite-difference checks of d(panel frames)/dp for every detector parameterisation (MATH.md 10.1)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from detector_cases import make_cspad_like, make_three_level, move_away_from_start
from xrefine_detector import make_detector_parameterisation
from xrefine_detector.rigid_motion import block_motion_derivatives, block_motions

def fd_derivatives(parameterisation, which, delta: float = 1e-3) -> np.ndarray:
    """Central differences of state() for the free parameters `which`, restoring the values.

    The state is ~300 mm, so rounding alone gives ~1e-13 mm / delta; some derivatives are only
    ~1e-3 mm/mrad (a module turning about an axis through itself), hence delta = 1e-3 (mm or
    mrad) rather than 1e-6: the truncation error is ~delta^2 * 1e-9 relative, far below it."""
    values = parameterisation.get_free_values()
    out = []
    for i in which:
        step = np.zeros_like(values)
        step[i] = 0.5 * delta
        parameterisation.set_free_values(values + step)
        forward = parameterisation.state()
        parameterisation.set_free_values(values - step)
        backward = parameterisation.state()
        out.append((forward - backward) / delta)
    parameterisation.set_free_values(values)
    return np.array(out)


def relative_errors(parameterisation, which=None) -> dict:
    """{free parameter name: max |FD - analytic| / max |analytic|} over every panel frame."""
    which = np.arange(parameterisation.num_free) if which is None else np.asarray(which)
    analytic = parameterisation.state_derivatives()[which]
    numeric = fd_derivatives(parameterisation, which)
    names = [p.name for p in parameterisation.free_parameters]
    out = {}
    for k, i in enumerate(which):
        scale = np.abs(analytic[k]).max()
        assert scale > 0, f"{names[i]} moves nothing"
        out[names[i]] = np.abs(numeric[k] - analytic[k]).max() / scale
    return out


def assert_derivatives_match(parameterisation, which=None, rtol: float = 1e-6) -> None:
    for name, error in relative_errors(parameterisation, which).items():
        assert error <= rtol, f"{name}: relative FD error {error:.2e}"


def test_block_motion_against_math_4_4():
    """The vectorised block motion is MATH.md 4.4's composition, written out for one block."""
    from xrefine.geometry import rotation_matrix, rotation_matrix_derivative

    rng = np.random.default_rng(7)
    basis = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    basis[:, 2] = np.cross(basis[:, 0], basis[:, 1])
    values = np.array([250.0, 3.0, -4.0, 2.0, -3.0, 1.5])
    e1, e2, n0 = basis.T
    angles = values[3:] / 1000.0
    T1, T2, T3 = (rotation_matrix(a, x) for a, x in zip((n0, e1, e2), angles))
    dT1, dT2, dT3 = (rotation_matrix_derivative(a, x) / 1000.0 for a, x in zip((n0, e1, e2), angles))
    s = values[1] * e1 + values[2] * e2
    R, pivot, dR, d_pivot = (a[0] for a in block_motion_derivatives(basis[None], values[None]))
    np.testing.assert_allclose(R, T3 @ T2 @ T1, atol=1e-15)
    np.testing.assert_allclose(pivot, values[0] * n0 + T3 @ T2 @ T1 @ s, atol=1e-12)
    np.testing.assert_allclose(block_motions(basis[None], values[None])[1][0], pivot, atol=0)
    np.testing.assert_allclose(dR, [T3 @ T2 @ dT1, T3 @ dT2 @ T1, dT3 @ T2 @ T1], atol=1e-17)
    np.testing.assert_allclose(d_pivot, [n0, R @ e1, R @ e2, *(d @ s for d in dR)], atol=1e-15)


def test_single_panel(single_panel_detector, beam):
    param = make_detector_parameterisation(single_panel_detector, beam, [0])
    move_away_from_start(param)
    assert_derivatives_match(param)


@pytest.mark.parametrize("panels", ["hierarchical", "multiple"])
def test_flat_2x2(flat_2x2_detector, beam, panels):
    param = make_detector_parameterisation(flat_2x2_detector, beam, [0], panels=panels)
    move_away_from_start(param)
    assert_derivatives_match(param)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_two_level_hierarchy(two_level_detector, beam, level):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=level)
    assert param.num_free == 6 * len(two_level_detector.groups_at_level(level))
    move_away_from_start(param)
    assert_derivatives_match(param)


def test_p6m_level0(p6m):
    detector, beam = p6m
    param = make_detector_parameterisation(detector, beam, [0])
    move_away_from_start(param)
    assert_derivatives_match(param)


def test_p6m_level1_sampled_modules(p6m):
    detector, beam = p6m
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=1)
    assert param.num_free == 360
    move_away_from_start(param)
    # three modules keep the test fast (each compose moves 60 modules); the code path is the same
    modules = [0, 29, 59]
    assert_derivatives_match(param, [6 * m + k for m in modules for k in range(6)])


def test_with_fixed_parameters(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=1, fix=["Tau2", "Group3"])
    assert param.num_free == 24 - 4 - 5
    move_away_from_start(param)
    assert_derivatives_match(param)


def test_after_rebase(two_level_detector, beam):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=1)
    move_away_from_start(param)
    param.rebase()
    move_away_from_start(param, scale=-0.5)
    assert_derivatives_match(param)


# --- several levels at once (MATH.md 4.5 [rec])
@pytest.mark.parametrize("levels", [[0, 1], [1, 2], [0, 2], [0, 1, 2]])
def test_two_level_hierarchy_several_levels(two_level_detector, beam, levels):
    param = make_detector_parameterisation(two_level_detector, beam, [0], hierarchy_level=levels)
    assert param.num_free == 6 * sum(len(two_level_detector.groups_at_level(level)) for level in levels)
    move_away_from_start(param)
    assert_derivatives_match(param)


THREE_LEVEL_COMBINATIONS = [list(c) for k in (2, 3, 4) for c in itertools.combinations(range(4), k)]


@pytest.mark.parametrize("levels", THREE_LEVEL_COMBINATIONS, ids=lambda c: "_".join(map(str, c)))
def test_three_level_tree_every_combination(beam, levels):
    param = make_detector_parameterisation(make_three_level(), beam, [0], hierarchy_level=levels)
    move_away_from_start(param)
    assert_derivatives_match(param)


@pytest.mark.parametrize("levels", [[0, 1, 2, 3], [1, 2], [0, 3]], ids=lambda c: "_".join(map(str, c)))
def test_cspad_like_four_levels(beam, levels):
    detector = make_cspad_like()
    assert detector.depth() == 3 and len(detector) == 64
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=levels)
    assert param.num_free == 6 * sum(len(detector.groups_at_level(level)) for level in levels)
    move_away_from_start(param)
    assert_derivatives_match(param)


def test_p6m_detector_and_modules_at_once(p6m):
    detector, beam = p6m
    param = make_detector_parameterisation(detector, beam, [0], hierarchy_level=[0, 1])
    assert param.num_free == 366
    move_away_from_start(param)
    modules = [0, 29, 59]
    assert_derivatives_match(param, list(range(6)) + [6 + 6 * m + k for m in modules for k in range(6)])


def test_several_levels_with_fixed_parameters(beam):
    param = make_detector_parameterisation(make_three_level(), beam, [0], hierarchy_level=[0, 1, 2],
                                           fix=["Level1Group2Tau", "Level0Group1Dist"], fix_groups=["Level2Group3"])
    assert param.num_free == 6 * (1 + 2 + 5) - 3 - 1 - 6
    move_away_from_start(param)
    assert_derivatives_match(param)


def test_several_levels_after_rebase(beam):
    param = make_detector_parameterisation(make_cspad_like(), beam, [0], hierarchy_level=[0, 1, 2, 3])
    move_away_from_start(param)
    param.rebase()
    move_away_from_start(param, scale=-0.5)
    assert_derivatives_match(param)
