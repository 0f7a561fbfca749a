"""Finite-difference checks of d(panel frames)/dp for every detector parameterisation (MATH.md 10.1)."""

from __future__ import annotations

import numpy as np
import pytest
from detector_cases import move_away_from_start
from xrefine_detector import make_detector_parameterisation

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


def assert_derivatives_match(parameterisation, which=None, rtol: float = 1e-6) -> None:
    which = np.arange(parameterisation.num_free) if which is None else np.asarray(which)
    analytic = parameterisation.state_derivatives()[which]
    numeric = fd_derivatives(parameterisation, which)
    names = [p.name for p in parameterisation.free_parameters]
    for k, i in enumerate(which):
        scale = np.abs(analytic[k]).max()
        assert scale > 0, f"{names[i]} moves nothing"
        error = np.abs(numeric[k] - analytic[k]).max() / scale
        assert error <= rtol, f"{names[i]}: relative FD error {error:.2e}"


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
