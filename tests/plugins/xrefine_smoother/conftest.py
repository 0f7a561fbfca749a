"""Make `xrefine_smoother` importable from the source tree until it is installed (a no-op
once it is), and provide small geometries for the smoother tests."""

import importlib.util
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("xrefine_smoother") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "plugins"))

import smoother_cases  # after the path set-up


@pytest.fixture(scope="session")
def cases():
    """The builders and finite-difference helpers of smoother_cases."""
    return smoother_cases
