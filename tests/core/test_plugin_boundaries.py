"""Plugins use only the core's public API and never import each other (DESIGN.md §1)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("xrefine_"))
PUBLIC_CORE = {
    "xrefine", "xrefine.models", "xrefine.geometry", "xrefine.reflections", "xrefine.errors", "xrefine.parameters",
    "xrefine.predictor", "xrefine.engine", "xrefine.outliers", "xrefine.hookspecs", "xrefine.config", "xrefine.io",
    "xrefine.simulation", "xrefine.cell", "xrefine.restraints", "xrefine.scan_varying",
}


def imported_modules(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            for a in node.names:
                yield f"{node.module}.{a.name}"


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugin_imports_only_public_core(plugin):
    bad = []
    for f in plugin.rglob("*.py"):
        for mod in imported_modules(f):
            top = mod.split(".")[0]
            if top.startswith("xrefine_") and top != plugin.name:
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
            if top == "xrefine":
                parts = mod.split(".")
                # 'from xrefine.models import Beam' yields xrefine.models and xrefine.models.Beam
                if not any(".".join(parts[:k]) in PUBLIC_CORE for k in (len(parts), len(parts) - 1)):
                    bad.append(f"{f.relative_to(ROOT)} imports private core module {mod}")
    assert not bad, "\n".join(bad)


def test_scan_sees_every_plugin():
    assert {p.name for p in PLUGINS} >= {"xrefine_rotation", "xrefine_detector", "xrefine_engines", "xrefine_outliers"}


def test_boundary_check_catches_a_cross_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from xrefine_detector.factory import make_detector_parameterisation\nimport xrefine.refine\n")
    mods = set(imported_modules(bad))
    assert "xrefine_detector.factory" in mods and "xrefine.refine" in mods


def test_builtin_plugins_registered_through_entry_points():
    from importlib import metadata

    names = {ep.name: ep.value for ep in metadata.entry_points(group="xrefine")}
    for p in ("rotation", "detector", "engines", "outliers", "simulate", "smoother", "restraints"):
        assert names[p] == f"xrefine_{p}.plugin"
