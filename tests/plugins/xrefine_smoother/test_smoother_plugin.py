"""The plugin module: options, the smoother registration and its factory, the import boundary."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from xrefine import hookspecs
from xrefine.config import Config
from xrefine.errors import InputError
from xrefine.models import Experiment

from xrefine_smoother import ScanVaryingWrapper, plugin

PLUGIN_DIR = Path(plugin.__file__).resolve().parent


def config_with(**values):
    options = {o.key: o for o in plugin.xrefine_config_options()}
    cfg = Config(options=options, values={k: o.default for k, o in options.items()})
    for k, v in values.items():
        cfg.set(k.replace("__", "."), v)
    return cfg


def test_options_and_defaults():
    cfg = config_with()
    assert cfg["smoother.interval_width_degrees"] == 36.0
    assert cfg["smoother.absolute_num_intervals"] is None
    assert cfg["smoother.min_reflections_per_sample"] == 20
    assert config_with(smoother__absolute_num_intervals="Auto")["smoother.absolute_num_intervals"] is None
    assert config_with(smoother__absolute_num_intervals="7")["smoother.absolute_num_intervals"] == 7


def test_registered_through_the_hooks():
    pm = pluggy.PluginManager("xrefine")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="smoother")
    (smoothers,) = pm.hook.xrefine_smoothers()
    assert smoothers == {"gaussian": plugin.make_gaussian, "bspline": plugin.make_bspline}
    keys = [o.key for opts in pm.hook.xrefine_config_options() for o in opts]
    assert keys == ["smoother.interval_width_degrees", "smoother.absolute_num_intervals", "smoother.min_reflections_per_sample"]


def test_factory_builds_the_wrapper_for_the_scan(cases):
    expt = cases.make_experiment(n_images=720, oscillation=(0.0, 0.5))  # 360 degrees
    static = cases.static_parameterisation("unit_cell", expt)
    w = plugin.make_gaussian(static, expt, config_with())
    assert isinstance(w, ScanVaryingWrapper)
    assert w.smoother.x_range == (0.0, 720.0) and w.smoother.num_intervals == 10
    assert w.num_free == static.num_free * 12
    assert w.name == static.name and w.experiment_ids == static.experiment_ids and w.model is static.model
    w2 = plugin.make_gaussian(static, expt, config_with(smoother__absolute_num_intervals=3))
    assert w2.smoother.num_values == 5
    # a configuration without the smoother's options (plugin not registered) gets the defaults
    assert plugin.make_gaussian(static, expt, {}).smoother.num_intervals == 10


def test_factory_refuses_stills(cases):
    expt = cases.make_experiment()
    still = Experiment(beam=expt.beam, detector=expt.detector, goniometer=None, scan=None, crystal=expt.crystal)
    static = cases.static_parameterisation("orientation", expt)
    with pytest.raises(InputError, match=r"Crystal1 \(crystal.U\) cannot vary along a scan"):
        plugin.make_gaussian(static, still, config_with())
