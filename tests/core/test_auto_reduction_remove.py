"""auto_reduction.action=remove, as dials.refine does it: a parameter group with too few
reflections is fixed at its starting values and the reflections that depend on it leave
refinement for good (not flagged used_in_refinement, nor centroid_outlier); removal repeats
until no group is starved; removing everything is one clear error."""

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xrefine
from xrefine.config import build_config
from xrefine.errors import InputError
from xrefine.io import read_experiments, write_experiments, write_reflections
from xrefine.predict import predict_experiments
from xrefine.reflections import Flags
from xrefine.refine import build_parameterisations, build_predictors
from xrefine.simulation import Truth, observe, perturb

P6M = Path(__file__).resolve().parents[1] / "data" / "p6m-modules-small"

#: the module blocks refined (Group k is panel k - 1); every other module is fixed at the truth
REFINED = ("Group2", "Group3", "Group4", "Group8")
STARVED_PANEL = 7  # Group8: cut to 20 reflections, fewer than 5 x its 6 parameters


def _detector(refined=REFINED) -> dict:
    return {"detector__hierarchy_level": 1,
            "detector__fix_groups": [f"Group{k}" for k in range(1, 61) if f"Group{k}" not in refined]}


RUN = {"scan_varying": "false", **_detector()}


def _values(experiments, options) -> dict:
    """{parameter name: value} of the parameters `options` refine, for these models."""
    cfg = build_config(overrides=options)
    return {p.name + q.name: q.value for p in build_parameterisations(copy.deepcopy(experiments), cfg)
            for q in p.free_parameters}


def _truth(n_images=150) -> Truth:
    from xrefine_simulate.presets import truncate_scan

    truth = Truth(experiments=read_experiments(str(P6M / "truth.expt")), d_min=1.6, outlier_fraction=0.0)
    return truncate_scan(truth, n_images)


def _observe(truth: Truth):
    predicted = predict_experiments(truth.experiments, build_predictors(truth.experiments), truth.d_min)
    table, _ = observe(truth, predicted, np.random.default_rng([1, 1]))
    return table


def _keep_only(table, drop: np.ndarray):
    return table.select(np.flatnonzero(~drop))


@pytest.fixture(scope="module")
def starved_module():
    """(truth, start, table): the 60-module Pilatus 6M (150 images, about 15 000 reflections).
    Modules 2-4, the beam and the crystal start perturbed; module 8 (panel 7) starts at the
    truth but keeps only 20 of its about 460 reflections."""
    truth = _truth()
    table = _observe(truth)
    start = copy.deepcopy(truth.experiments)
    perturb(start, truth, np.random.default_rng(3),
            config=build_config(overrides=_detector(refined=("Group2", "Group3", "Group4"))))
    panel = np.asarray(table["panel"]).astype(int)
    on_starved = np.flatnonzero(panel == STARVED_PANEL)
    drop = np.zeros(table.nrows, dtype=bool)
    drop[on_starved[20:]] = True
    return truth, start, _keep_only(table, drop)


def _used(res) -> np.ndarray:
    return (np.asarray(res.reflections["flags"], dtype=np.uint64) & np.uint64(Flags.used_in_refinement)) != 0


def _outlier(res) -> np.ndarray:
    return (np.asarray(res.reflections["flags"], dtype=np.uint64) & np.uint64(Flags.centroid_outlier)) != 0


@pytest.mark.parametrize("outliers", ["mcd", "null"])
def test_remove_excludes_a_starved_module_and_the_rest_recovers_the_truth(starved_module, outliers):
    truth, start, table = starved_module
    panel = np.asarray(table["panel"]).astype(int)
    on_starved = panel == STARVED_PANEL
    assert on_starved.sum() == 20
    options = {**RUN, "outlier__algorithm": outliers}

    # with fix the starved module's reflections stay in refinement (its start is the truth, so
    # they are no outliers): the scenario can tell the two actions apart
    fixed = xrefine.refine(copy.deepcopy(start), table, auto_reduction__action="fix", **options)
    assert _used(fixed)[on_starved].sum() >= 18

    res = xrefine.refine(copy.deepcopy(start), table, auto_reduction__action="remove", **options)
    used, outlier = _used(res), _outlier(res)
    # the module's 20 reflections: neither used nor outliers, and not counted anywhere
    assert not used[on_starved].any() and not outlier[on_starved].any()
    assert res.rmsd_by_experiment[0]["n_reflections"] == used.sum()
    if outliers == "null":  # otherwise the outlier sets may differ a little
        assert used.sum() == _used(fixed).sum() - _used(fixed)[on_starved].sum()
    assert not [r for r in res.rmsd_by_panel if r["panel"] == STARVED_PANEL and r["n_reflections"]]
    assert res.outliers["final"] == outlier.sum()
    assert used[~on_starved].mean() > 0.99
    messages = res.selection["auto_reduction"]
    assert len(messages) == 2 and messages[0].startswith("fixed Detector1Group8Dist, ") and "20 reflections for 6" in messages[0]
    assert messages[1] == "removed 20 reflections that depend on the parameters fixed above (experiment 0: 20 on panel 7)"
    assert "Auto-reduction: removed 20 reflections" in str(res)

    # module 8 keeps its starting values (there, the truth) ...
    initial = _values(start, RUN)
    group8 = [p for p in res.parameters if "Group8" in p["name"]]
    assert len(group8) == 6 and all(p["fixed"] and np.isclose(p["value"], initial[p["name"]], rtol=0, atol=1e-9)
                                    for p in group8)
    assert np.allclose(res.experiments[0].detector[STARVED_PANEL].d, start[0].detector[STARVED_PANEL].d, rtol=0, atol=1e-9)
    assert all(not p["fixed"] for p in res.parameters if p["name"] in initial and "Group8" not in p["name"])
    # ... and the rest refines from its perturbed start to the truth
    for k in (1, 2, 3):  # modules 2-4
        true, begin, end = (x[0].detector[k] for x in (truth.experiments, start, res.experiments))
        assert 1000 * np.linalg.norm(_centre(begin) - _centre(true)) > 1000
        assert 1000 * np.linalg.norm(_centre(end) - _centre(true)) < 50, k
        for axis in ("fast", "slow"):
            before, after = (_angle_mrad(getattr(m, axis), getattr(true, axis)) for m in (begin, end))
            assert before > 2 and after < 1.2, (k, axis, before, after)
    true, begin, end = (x[0].beam.s0 for x in (truth.experiments, start, res.experiments))
    assert _angle_mrad(begin, true) > 0.3 and _angle_mrad(end, true) < 0.02
    true, begin, end = (x[0].crystal.A for x in (truth.experiments, start, res.experiments))
    assert np.abs(begin - true).max() > 1e-3 * np.abs(true).max()
    assert np.abs(end - true).max() < 1e-4 * np.abs(true).max()


def _centre(panel) -> np.ndarray:
    w, h = (0.5 * v for v in panel.size_mm)
    return panel.origin + w * panel.fast + h * panel.slow


def _angle_mrad(a, b) -> float:
    a, b = np.asarray(a) / np.linalg.norm(a), np.asarray(b) / np.linalg.norm(b)
    return 1000 * float(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b))


@pytest.fixture(scope="module")
def two_crystals():
    """(start, table): two experiments share the beam, the 60-module detector and the scan;
    the second crystal has only 12 reflections, all on module 3 (panel 2), and module 3 keeps
    20 of the first crystal's.  Module 3 has 32 >= 30 reflections until the second crystal's
    leave with its orientation (12 < 3 x 5)."""
    from xrefine_simulate.presets import random_rotation

    truth = _truth()
    e0 = truth.experiments[0]
    e1 = copy.copy(e0)
    e1.crystal = copy.deepcopy(e0.crystal)
    e1.crystal.A_at_scan_points = None
    e1.crystal.set_UB(random_rotation(np.random.default_rng(7)) @ e0.crystal.U, e0.crystal.B)
    e1.identifier = "second-crystal"
    truth.experiments.append(e1)
    table = _observe(truth)
    ids = np.asarray(table["id"]).astype(int)
    panel = np.asarray(table["panel"]).astype(int)
    drop = np.zeros(table.nrows, dtype=bool)
    for e, keep in ((0, 20), (1, 12)):
        rows = np.flatnonzero((ids == e) & (panel == 2))
        assert len(rows) > keep
        drop[rows[keep:]] = True
    drop[(ids == 1) & (panel != 2)] = True
    return copy.deepcopy(truth.experiments), _keep_only(table, drop)


def test_remove_repeats_until_no_group_is_starved(two_crystals):
    start, table = two_crystals
    ids = np.asarray(table["id"]).astype(int)
    panel = np.asarray(table["panel"]).astype(int)
    assert (ids == 1).sum() == 12 and ((ids == 0) & (panel == 2)).sum() == 20
    options = {**_detector(refined=("Group2", "Group3")), "scan_varying": "false", "outlier__algorithm": "null"}

    fixed = xrefine.refine(copy.deepcopy(start), table, auto_reduction__action="fix", **options)
    assert [m.split(":")[0] for m in fixed.selection["auto_reduction"]] == ["fixed Crystal2Phi1, Crystal2Phi2, Crystal2Phi3"]
    assert _used(fixed)[panel == 2].all()

    res = xrefine.refine(copy.deepcopy(start), table, auto_reduction__action="remove", **options)
    messages = res.selection["auto_reduction"]
    assert messages[0] == "fixed Crystal2Phi1, Crystal2Phi2, Crystal2Phi3: 12 reflections for 3 parameters"
    assert messages[1] == "removed 12 reflections that depend on the parameters fixed above (experiment 1: all 12)"
    assert messages[2] == "experiment 1 has no reflections left in refinement"
    # the second round: the second crystal's cell has nothing left, module 3 only 20
    assert sorted(m.split(":")[0] for m in messages[3:5]) == [
        "fixed Crystal2g_param_0",
        "fixed " + ", ".join(f"Detector1Group3{q}" for q in ("Dist", "Shift1", "Shift2", "Tau1", "Tau2", "Tau3"))]
    assert messages[5] == "removed 20 reflections that depend on the parameters fixed above (experiment 0: 20 on panel 2)"
    assert len(messages) == 6
    fixed_names = {p["name"] for p in res.parameters if p["fixed"]}
    assert {"Crystal2Phi1", "Crystal2g_param_0", "Detector1Group3Dist"} <= fixed_names
    assert not {"Crystal1Phi1", "Crystal1g_param_0", "Detector1Group2Dist"} & fixed_names
    used = _used(res)
    assert not used[(ids == 1) | (panel == 2)].any() and used[(ids == 0) & (panel != 2)].mean() > 0.99
    assert res.rmsd_by_experiment[1]["n_reflections"] == 0 and res.rmsd_by_experiment[1]["rmsd_x_px"] is None
    assert res.rmsd_by_experiment[0]["n_reflections"] == used.sum()


def test_remove_of_everything_is_one_line_error(starved_module):
    """On one module alone, every reflection depends on the beam and the crystal: a starved
    group there takes them all."""
    _, start, table = starved_module
    options = {**RUN, "auto_reduction__action": "remove", "auto_reduction__min_nref_per_parameter": 10 ** 6}
    with pytest.raises(InputError) as err:
        xrefine.refine(copy.deepcopy(start), table, **options)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("auto_reduction.action=remove left no reflections to refine: it fixed Detector1Group2Dist")
    assert "set auto_reduction.action=fix" in text


def test_remove_that_fixes_every_parameter_is_an_error(starved_module):
    """Only module 8 refined: once it is fixed and its reflections removed, nothing is left to refine."""
    _, start, table = starved_module
    options = {**_detector(refined=("Group8",)), "scan_varying": "false", "beam__fix": ["all"],
               "crystal__orientation__fix": ["all"], "crystal__unit_cell__fix": ["all"]}
    with pytest.raises(InputError, match=r"^nothing to refine: auto_reduction.action=remove fixed every parameter "
                                         r"\(Detector1Group8Dist, .*: 20 reflections for 6 parameters; need 5"):
        xrefine.refine(copy.deepcopy(start), table, auto_reduction__action="remove", **options)


def test_remove_error_on_the_command_line(starved_module, tmp_path):
    _, start, table = starved_module
    write_experiments(start, str(tmp_path / "start.expt"))
    write_reflections(table, str(tmp_path / "observed.refl"))
    r = subprocess.run([sys.executable, "-m", "xrefine.cli", "refine", "start.expt", "observed.refl",
                        "auto_reduction.action=remove", "auto_reduction.min_nref_per_parameter=1000000"],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "left no reflections to refine" in lines[0], r.stderr


def test_a_constraint_group_counts_once_for_remove(starved_module):
    """Module 8's distance alone has 20 reflections, fewer than 100; tied to the distances of
    modules 2-4 it is one parameter seen by about 1 350, so nothing is fixed or removed."""
    _, start, table = starved_module
    on_starved = np.asarray(table["panel"]).astype(int) == STARVED_PANEL
    options = {**RUN, "detector__fix": ["orientation", "Shift"], "outlier__algorithm": "null",
               "auto_reduction__action": "remove", "auto_reduction__min_nref_per_parameter": 100}
    alone = xrefine.refine(copy.deepcopy(start), table, **options)
    assert alone.selection["auto_reduction"] == [
        "fixed Detector1Group8Dist: 20 reflections for 1 parameter",
        "removed 20 reflections that depend on the parameters fixed above (experiment 0: 20 on panel 7)"]
    assert not _used(alone)[on_starved].any()
    tied = xrefine.refine(copy.deepcopy(start), table, constraints=["Dist"], **options)
    assert tied.selection["auto_reduction"] == []
    assert _used(tied)[on_starved].all()
    tied_distances = [p for p in tied.parameters if p["name"] in {f"Detector1{g}Dist" for g in REFINED}]
    assert len(tied_distances) == 4 and not any(p["fixed"] for p in tied_distances)



def test_remove_in_an_independent_set_reports_the_jobs_numbering(starved_module):
    """A second experiment with models of its own forms a second independent set; what
    auto-reduction says about it names its models and its experiment as the whole job does."""
    from xrefine.models import ExperimentList
    from xrefine.reflections import concatenate

    truth, _, _ = starved_module
    second = copy.deepcopy(truth)
    second.experiments[0].identifier = "second"
    table1 = _observe(second)
    panel = np.asarray(table1["panel"]).astype(int)
    drop = np.zeros(table1.nrows, dtype=bool)
    drop[np.flatnonzero(panel == STARVED_PANEL)[20:]] = True
    table1 = _keep_only(table1, drop)
    table1["id"] = np.ones(table1.nrows, dtype=np.int32)
    table1.identifiers = {1: "second"}
    table = concatenate([_observe(truth), table1])
    experiments = ExperimentList([*copy.deepcopy(truth.experiments), *second.experiments])

    res = xrefine.refine(experiments, table, auto_reduction__action="remove", **RUN)
    assert res.selection["independent_sets"] == [[0], [1]]
    messages = res.selection["auto_reduction"]
    assert len(messages) == 2 and messages[0].startswith("fixed Detector2Group8Dist, Detector2Group8Shift1, ")
    assert messages[1] == "removed 20 reflections that depend on the parameters fixed above (experiment 1: 20 on panel 7)"
    ids = np.asarray(table["id"]).astype(int)
    on_starved = (ids == 1) & (np.asarray(table["panel"]).astype(int) == STARVED_PANEL)
    assert not _used(res)[on_starved].any() and _used(res)[ids == 0].mean() > 0.99
    assert {p["name"] for p in res.parameters if p["fixed"] and "Group8" in p["name"]} >= {"Detector2Group8Dist"}
    assert not any(p["fixed"] for p in res.parameters if p["name"].startswith("Detector1Group8"))


def test_a_group_starved_by_the_redetection_is_reported(starved_module):
    """Regression: the auto-reduction after an outlier re-detection on the converged model used
    to fix groups without a word in the summary."""
    truth, start, table = starved_module
    table = copy.deepcopy(table)
    panel = np.asarray(table["panel"]).astype(int)
    rows = np.flatnonzero(panel == STARVED_PANEL)
    # module 8 has 20 reflections, 3 of them with gross errors; at 3 per parameter (18 needed) it
    # passes the check before any rejection and fails it once the converged model rejects them
    xyz = np.array(table["xyzobs.mm.value"])
    xyz[rows[:3], 0] += 3.0  # 17 px
    table["xyzobs.mm.value"] = xyz
    options = {**RUN, "auto_reduction__min_nref_per_parameter": 3, "auto_reduction__action": "fix"}
    res = xrefine.refine(copy.deepcopy(start), table, **options)
    assert _outlier(res)[rows[:3]].all()
    messages = res.selection["auto_reduction"]
    group8 = [m for m in messages if m.startswith("fixed Detector1Group8Dist, ")]
    assert len(group8) == 1 and int(group8[0].split(": ")[1].split()[0]) < 18, messages
    assert all(p["fixed"] for p in res.parameters if "Group8" in p["name"])
