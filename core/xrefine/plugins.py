"""The plugin manager: finds plugins through the ``xrefine`` entry-point group.

Environment variables:

``XREFINE_LOAD_PLUGINS``
    comma-separated entry-point names to load (all when unset; empty string loads none).
``XREFINE_TRACE_PLUGINS``
    when set to 1, every hook call is printed to stderr with its arguments and results.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import InputError

__all__ = ["get_plugin_manager", "registrations", "plugin_info"]

_DISTRIBUTIONS: dict = {}


def _load(pm: pluggy.PluginManager) -> None:
    wanted = os.environ.get("XREFINE_LOAD_PLUGINS")
    allowed = None if wanted is None else {w.strip() for w in wanted.split(",") if w.strip()}
    for ep in metadata.entry_points(group="xrefine"):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        module = ep.load()
        pm.register(module, name=ep.name)
        dist = getattr(ep, "dist", None)
        _DISTRIBUTIONS[ep.name] = (dist.name, dist.version) if dist is not None else ("?", "?")


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with every installed plugin registered."""
    pm = pluggy.PluginManager("xrefine")
    pm.add_hookspecs(hookspecs)
    _load(pm)
    if os.environ.get("XREFINE_TRACE_PLUGINS") == "1":

        def before(hook_name, hook_impls, kwargs):
            print(f"xrefine hook {hook_name}({kwargs}) -> {[i.plugin_name for i in hook_impls]}", file=sys.stderr)

        def after(outcome, hook_name, hook_impls, kwargs):
            print(f"xrefine hook {hook_name} returned {outcome.get_result()!r}", file=sys.stderr)

        pm.add_hookcall_monitoring(before, after)
    return pm


def registrations(hook_name: str) -> dict:
    """Merge the ``{name: object}`` dicts every plugin returns from a registration hook."""
    pm = get_plugin_manager()
    hook = getattr(pm.hook, hook_name)
    merged: dict = {}
    owner: dict = {}
    trace = os.environ.get("XREFINE_TRACE_PLUGINS") == "1"
    for impl in reversed(hook.get_hookimpls()):  # registration order
        result = impl.function()
        if trace:
            print(f"xrefine hook {hook_name} of {impl.plugin_name} -> {sorted((result or {}).keys())}", file=sys.stderr)
        for name, obj in (result or {}).items():
            if name in merged:
                raise InputError(
                    f"plugins {owner[name]!r} and {impl.plugin_name!r} both register {name!r} "
                    f"for {hook_name}; uninstall one or limit XREFINE_LOAD_PLUGINS"
                )
            merged[name] = obj
            owner[name] = impl.plugin_name
    return merged


def plugin_info() -> list:
    """(entry-point name, distribution, version, hooks implemented) for every loaded plugin."""
    pm = get_plugin_manager()
    rows = []
    for name, module in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(module) or [])
        dist, version = _DISTRIBUTIONS.get(name, ("?", "?"))
        rows.append((name, dist, version, hooks))
    return rows
