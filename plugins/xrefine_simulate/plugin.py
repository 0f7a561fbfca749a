"""Registers the built-in simulation presets."""

from xrefine.hookspecs import hookimpl

from .presets import PRESETS


@hookimpl
def xrefine_simulation_presets():
    return dict(PRESETS)
