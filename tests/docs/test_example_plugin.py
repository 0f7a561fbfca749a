"""The example plugin of docs/plugin-guide.md (docs/examples/xrefine_example_plugin) works.

The plugin is not installed: each test registers its module with the plugin manager under the
name its entry point would have and unregisters it afterwards, which is what xrefine does with
an installed plugin's module.
"""

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import xrefine
from xrefine.config import all_options, build_config
from xrefine.errors import InputError
from xrefine.plugins import get_plugin_manager, registrations
from xrefine.reflections import Flags

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "xrefine_example_plugin"
NAME = "example"  # the entry-point name in the example's pyproject.toml


@pytest.fixture
def example(monkeypatch):
    """The example plugin's hook module, registered for the duration of one test."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    module = importlib.import_module("xrefine_example_plugin.plugin")
    pm = get_plugin_manager()
    if pm.get_plugin(NAME) is not None:
        pytest.skip(f"a plugin named {NAME!r} is installed; these tests register the example themselves")
    pm.register(module, name=NAME)
    try:
        yield module
    finally:
        pm.unregister(name=NAME)
    assert pm.get_plugin(NAME) is None


def test_the_entry_point_names_the_hook_module():
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["xrefine"] == {NAME: "xrefine_example_plugin.plugin"}


def test_the_option_is_offered_and_parsed(example):
    option = all_options()["outlier.sigma_clip.k"]
    assert option.default == 5.0 and option.type == "float" and option.source == NAME
    assert build_config(arguments=["outlier.algorithm=sigma-clip", "outlier.sigma_clip.k=3.5"])["outlier.sigma_clip.k"] == 3.5
    assert build_config(overrides={"outlier__sigma_clip__k": 4})["outlier.sigma_clip.k"] == 4.0
    with pytest.raises(InputError, match="outlier.sigma_clip.k"):
        build_config(arguments=["outlier.sigma_clip.k=many"])


def test_unregistering_removes_option_and_detector(example):
    get_plugin_manager().unregister(name=NAME)
    try:
        assert "outlier.sigma_clip.k" not in all_options()
        assert "sigma-clip" not in registrations("xrefine_outlier_detectors")
    finally:
        get_plugin_manager().register(example, name=NAME)


def test_detector_finds_planted_outliers(example):
    factory = registrations("xrefine_outlier_detectors")["sigma-clip"]
    detector = factory(build_config())
    assert detector.k == 5.0
    assert factory(build_config(), converged=True).k == 5.0  # the detector for a converged model
    rng = np.random.default_rng(7)
    n = 5000
    # residual columns with the scales of real ones: 0.04 mm, 0.04 mm, 0.4 mrad
    scale = np.array([0.04, 0.04, 4e-4])
    residuals = rng.normal(size=(n, 3)) * scale + np.array([0.01, -0.02, 1e-4])
    planted = rng.choice(n, size=50, replace=False)
    column = rng.integers(0, 3, size=50)
    residuals[planted, column] += rng.choice([-1.0, 1.0], size=50) * rng.uniform(8.0, 20.0, size=50) * scale[column]
    flagged = detector.detect(residuals)
    assert flagged.dtype == bool and flagged.shape == (n,)
    assert flagged[planted].all()
    assert flagged.sum() - 50 <= 2  # P(|z| > 5) = 6e-7 per value: no clean row is expected
    # judged column by column on its own scale: units do not matter
    assert np.array_equal(detector.detect(residuals * np.array([1e3, 1.0, 1e-3])), flagged)


def test_detector_edge_cases(example):
    from xrefine_example_plugin import SigmaClipDetector

    detector = SigmaClipDetector(k=3.0)
    assert detector.detect(np.zeros((0, 3))).shape == (0,)
    # a column with zero MAD has no scale and flags nothing; the other column still does
    x = np.zeros((101, 2))
    x[0, 0] = 1.0
    x[:, 1] = np.linspace(-1.0, 1.0, 101)
    x[1, 1] = 50.0
    assert np.flatnonzero(detector.detect(x)).tolist() == [1]
    with pytest.raises(ValueError):
        SigmaClipDetector(k=0.0)
    with pytest.raises(ValueError):
        detector.detect(np.zeros(5))
    factory = registrations("xrefine_outlier_detectors")["sigma-clip"]
    with pytest.raises(InputError, match="outlier.sigma_clip.k"):
        factory(build_config(arguments=["outlier.sigma_clip.k=-1"]))


def test_refinement_uses_the_detector_and_reports_every_step(example, wedge, sim):
    truth, predicted, start = wedge
    table, gross = sim.noisy(truth, predicted, seed=5, outlier_fraction=0.01)
    example.steps.append("left over from an earlier run")
    result = xrefine.refine(start, table, outlier__algorithm="sigma-clip", scan_varying="false")

    assert result.converged
    flagged = np.flatnonzero(result.reflections.get_flags(Flags.centroid_outlier))
    found = np.isin(gross, flagged).mean()
    assert found > 0.9, f"only {found:.0%} of the {len(gross)} gross outliers flagged"
    assert len(flagged) < 2 * len(gross), f"{len(flagged)} flagged for {len(gross)} gross outliers"
    assert result.rmsd_by_experiment[0]["rmsd_x_px"] < 0.3

    # the step hook saw exactly the steps of the history, both macrocycles included
    assert example.steps == result.history
    assert len(example.steps) >= 3
    assert [r.macrocycle for r in example.steps][0] == 0
    assert {r.macrocycle for r in example.steps} == set(range(max(r.macrocycle for r in example.steps) + 1))


def test_refinement_without_the_plugin_does_not_know_the_detector(wedge, sim):
    truth, predicted, start = wedge
    table, _ = sim.noisy(truth, predicted, seed=5, outlier_fraction=0.01)
    with pytest.raises(InputError, match="unknown option 'outlier.sigma_clip.k'"):
        xrefine.refine(start, table, outlier__algorithm="sigma-clip", outlier__sigma_clip__k=4.0)
    with pytest.raises(InputError, match="outlier.algorithm='sigma-clip' is not installed"):
        xrefine.refine(start, table, outlier__algorithm="sigma-clip", scan_varying="false")


def test_example_imports_only_the_public_core():
    """The rule tests/core/test_plugin_boundaries.py enforces for the built-in plugins."""
    spec = importlib.util.spec_from_file_location("plugin_boundaries", ROOT / "tests" / "core" / "test_plugin_boundaries.py")
    boundaries = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(boundaries)
    bad = []
    for path in (EXAMPLE / "xrefine_example_plugin").rglob("*.py"):
        for mod in boundaries.imported_modules(path):
            parts = mod.split(".")
            if parts[0].startswith("xrefine_") and parts[0] != "xrefine_example_plugin":
                bad.append(f"{path.name} imports {mod}")
            if parts[0] == "xrefine" and not any(
                ".".join(parts[:k]) in boundaries.PUBLIC_CORE for k in (len(parts), len(parts) - 1)
            ):
                bad.append(f"{path.name} imports private core module {mod}")
    assert not bad, "\n".join(bad)
