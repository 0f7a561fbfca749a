"""Make `xrefine_restraints` importable from the source tree until it is installed (a no-op once
it is), register its plugin module with the plugin manager (a no-op once the entry point does),
and provide the builders of restraint_cases."""

import importlib.util
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("xrefine_restraints") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "plugins"))

import restraint_cases  # after the path set-up


@pytest.fixture(scope="session", autouse=True)
def restraints_plugin():
    """The plugin module, registered as ``restraints``."""
    import xrefine_restraints.plugin as module
    from xrefine.plugins import get_plugin_manager

    pm = get_plugin_manager()
    if pm.get_plugin("restraints") is None and not pm.is_registered(module):
        pm.register(module, name="restraints")
    return module


@pytest.fixture(scope="session")
def cases():
    """The builders and finite-difference helpers of restraint_cases."""
    return restraint_cases
