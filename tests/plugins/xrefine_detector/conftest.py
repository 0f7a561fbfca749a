"""Fixtures: fresh detectors (each test may move them) and a beam; builders in detector_cases.py."""

import pytest
from detector_cases import (
    make_beam,
    make_flat_2x2,
    make_single_panel,
    make_two_level,
    read_p6m_by_hand,
    read_p6m_with_xrefine_io,
)


@pytest.fixture
def beam():
    return make_beam()


@pytest.fixture
def single_panel_detector():
    return make_single_panel()


@pytest.fixture
def flat_2x2_detector():
    return make_flat_2x2()


@pytest.fixture
def two_level_detector():
    return make_two_level()


@pytest.fixture(params=["by_hand", "xrefine.io"])
def p6m(request):
    """(detector, beam) of tests/data/p6m-modules-small/start.expt, read by hand and, once it
    exists, by xrefine.io."""
    if request.param == "by_hand":
        return read_p6m_by_hand()
    try:
        import xrefine.io
    except ImportError:
        pytest.skip("xrefine.io is not importable")
    if not hasattr(xrefine.io, "read_experiments"):
        pytest.skip("xrefine.io.read_experiments is not written yet")
    return read_p6m_with_xrefine_io()
