"""Equal-shift constraints (MATH.md 9.2): a constrained set of parameters moves as one, the
engines see one column per group, and constraints on scan-varying parameters are refused."""

import copy

import numpy as np
import pytest
import xrefine
from restraint_cases import joint_wedges, p6m_job
from xrefine.config import build_config
from xrefine.errors import InputError
from xrefine.refine import _problem, build_parameterisations, build_predictors
from xrefine.selection import select_observations

from xrefine_restraints import build_equal_shift, parse_constraint

#: one rigid group per module, only the distances refined (with the beam and the crystal)
DETECTOR = {"detector__hierarchy_level": 1, "detector__fix": ["orientation", "Shift"]}
RUN = {"scan_varying": "false", "outlier__algorithm": "null", **DETECTOR}


@pytest.fixture(scope="module")
def p6m():
    """Observations and a start whose 60 modules sit at different distances (random offsets of
    up to 0.3 mm from the calibrated start), so that initial differences exist to be kept."""
    table, start = p6m_job()
    cfg = build_config(overrides=DETECTOR)
    (detector,) = [p for p in build_parameterisations(start, cfg) if p.kind == "detector.d"]
    values = detector.get_free_values()
    values += np.random.default_rng(5).uniform(-0.3, 0.3, size=len(values))
    detector.set_free_values(values)
    return table, start


def _distances(parameters) -> dict:
    return {p["name"]: p["value"] for p in parameters if p["name"].endswith("Dist")}


def _initial_distances(start) -> dict:
    params = build_parameterisations(copy.deepcopy(start), build_config(overrides=DETECTOR))
    return {p.name + q.name: q.value for p in params for q in p.free_parameters if q.name.endswith("Dist")}


@pytest.mark.parametrize("entries, groups", [
    (["Dist"], [range(1, 61)]),
    (["Group?Dist", "Group??Dist"], [range(1, 10), range(10, 61)]),
    (["detector1group[1-3]dist"], [range(1, 4)]),
])
def test_constrained_distances_move_as_one(p6m, entries, groups):
    table, start = p6m
    initial = _initial_distances(start)
    res = xrefine.refine(start, table, constraints=entries, **RUN)
    assert res.converged
    refined = _distances(res.parameters)
    grouped = set()
    for members in groups:
        names = [f"Detector1Group{g}Dist" for g in members]
        shifts = np.array([refined[n] - initial[n] for n in names])
        assert abs(shifts[0]) > 1e-3  # the group did move
        assert np.allclose(shifts, shifts[0], rtol=0, atol=1e-10)  # ... by one common shift
        grouped.update(names)
    free = [n for n in initial if n not in grouped]
    if free:  # the others moved independently
        assert np.std([refined[n] - initial[n] for n in free]) > 1e-3


def test_reduced_vector_has_one_column_per_group(p6m):
    table, start = p6m
    experiments = copy.deepcopy(start)
    cfg = build_config(overrides={**RUN, "constraints": ["Group?Dist", "Group??Dist"]})
    obs, _ = select_observations(experiments, table, cfg)
    params = build_parameterisations(experiments, cfg)
    problem = _problem(experiments, obs, params, build_predictors(experiments), cfg)
    assert problem.n_full - problem.n_params == (9 - 1) + (51 - 1)
    names = problem.parameter_names
    assert names[-2] == "=".join(f"Detector1Group{g}Dist" for g in range(1, 10))
    assert names[-1] == "=".join(f"Detector1Group{g}Dist" for g in range(10, 61))
    assert not any("Dist" in n for n in names[:-2])
    # a step along a group's column moves every member by the same amount
    x = problem.get_x()
    before = problem.get_full_x()
    x[-1] += 0.25
    problem.set_x(x)
    moved = problem.get_full_x() - before
    assert np.count_nonzero(moved) == 51 and np.allclose(moved[moved != 0], 0.25)
    # J of the reduced vector: the group's column is the sum of its members' columns
    ev = problem.evaluate(problem.get_x())
    J = problem.jacobian(problem.get_x()).toarray()
    assert J.shape[1] == problem.n_params
    assert np.allclose(J.T @ J, ev.normal, rtol=1e-10, atol=1e-10 * np.abs(ev.normal).max())


def test_constraints_across_crystals(sim):
    """`Crystal*g_param_1` (c* of every crystal of a joint job) moves by one shift."""
    truth = joint_wedges(sim, [1, 2, 3])
    table, _ = sim.noisy(truth, sim.predicted_for(truth), seed=4)
    start = sim.start_for(truth, seed=4)
    initial = {p.name + q.name: q.value for p in build_parameterisations(copy.deepcopy(start), build_config())
               for q in p.free_parameters}
    res = xrefine.refine(start, table, scan_varying="false", outlier__algorithm="null",
                         constraints=["Crystal*g_param_1"])
    refined = {p["name"]: p["value"] for p in res.parameters}
    shifts = [refined[f"Crystal{i}g_param_1"] - initial[f"Crystal{i}g_param_1"] for i in (1, 2, 3)]
    assert np.allclose(shifts, shifts[0], rtol=0, atol=1e-10) and abs(shifts[0]) > 1e-3
    others = [refined[f"Crystal{i}g_param_0"] - initial[f"Crystal{i}g_param_0"] for i in (1, 2, 3)]
    assert np.std(others) > 1e-3


@pytest.mark.parametrize("entry, pattern, ids", [
    ("Dist", "dist", None),
    ("Detector1Group*Dist@0+2", "detector1group*dist", {0, 2}),
    ("g_param_0@1-3", "g_param_0", {1, 2, 3}),
])
def test_entry_syntax(entry, pattern, ids):
    assert parse_constraint(entry, 5) == (pattern, ids)


def test_experiment_selection_picks_models(sim):
    """With separate detectors per experiment, Dist@0+2 ties detectors 1 and 3 only."""
    truth = joint_wedges(sim, [1, 2, 3])
    experiments = copy.deepcopy(truth.experiments)
    for e in experiments[1:]:
        e.detector = copy.deepcopy(e.detector)
    cfg = build_config(overrides={"constraints": ["Dist@0+2"]})
    groups = build_equal_shift(build_parameterisations(experiments, cfg), experiments, cfg)
    assert [[p.name + q.name for p, q in g] for g in groups] == [["Detector1Dist", "Detector3Dist"]]


def test_constraints_on_parameters_that_will_vary_are_refused_before_refinement(sim):
    truth = joint_wedges(sim, [1, 2])
    experiments = truth.experiments
    cfg = build_config(overrides={"constraints": ["Crystal*g_param_0"]})  # scan_varying=auto
    params = build_parameterisations(experiments, cfg)
    with pytest.raises(InputError, match="will vary along the scan .* set crystal.unit_cell.force_static=true or scan"):
        build_equal_shift(params, experiments, cfg)
    for fix in ({"crystal__unit_cell__force_static": True}, {"scan_varying": "false"}):
        cfg = build_config(overrides={"constraints": ["Crystal*g_param_0"], **fix})
        assert len(build_equal_shift(params, experiments, cfg)) == 1
    cfg = build_config(overrides={"constraints": ["Dist"]})  # the detector stays static by default
    assert build_equal_shift(params, experiments, cfg) == []  # one detector: nothing to tie


def test_constraints_on_scan_varying_parameters_are_refused(sim):
    from xrefine_smoother.plugin import make_gaussian

    truth = joint_wedges(sim, [1, 2])
    experiments = truth.experiments
    cfg = build_config(overrides={"constraints": ["Crystal*g_param_0"], "crystal__unit_cell__force_static": True})
    params = build_parameterisations(experiments, cfg)
    smoothed = [make_gaussian(p, experiments[p.experiment_ids[0]], cfg) if p.kind == "crystal.B" else p for p in params]
    assert any(p.scan_varying for p in smoothed)
    with pytest.raises(InputError, match="Crystal1g_param_0, which varies along the scan"):
        build_equal_shift(smoothed, experiments, cfg)


def _unconstrained_problem(start, table):
    experiments = copy.deepcopy(start)
    cfg = build_config(overrides=RUN)
    obs, _ = select_observations(experiments, table, cfg)
    return _problem(experiments, obs, build_parameterisations(experiments, cfg), build_predictors(experiments), cfg)


def test_auto_reduction_counts_a_constraint_group_once(p6m):
    """Each module alone has too few reflections for its distance at this threshold, but the
    constrained distance of all 60 sees every reflection: it is refined, not fixed."""
    table, start = p6m
    problem = _unconstrained_problem(start, table)
    counts = problem.columns_reflection_counts()
    dist_cols = [i for i, n in enumerate(problem.parameter_names) if n.endswith("Dist")]
    need = int(counts[dist_cols].max()) + 1  # every module's distance alone is starved
    assert need * 2 < len(problem.obs)
    options = {**RUN, "auto_reduction__min_nref_per_parameter": need, "auto_reduction__action": "fix"}
    alone = xrefine.refine(copy.deepcopy(start), table, **options)
    assert all(p["fixed"] for p in alone.parameters if p["name"].endswith("Dist"))
    assert any("Dist" in m for m in alone.selection["auto_reduction"])
    tied = xrefine.refine(copy.deepcopy(start), table, constraints=["Dist"], **options)
    assert not any(p["fixed"] for p in tied.parameters if p["name"].endswith("Dist"))
    assert not any("Dist" in m for m in tied.selection["auto_reduction"])
    initial = _initial_distances(start)
    shifts = np.array([p["value"] - initial[p["name"]] for p in tied.parameters if p["name"].endswith("Dist")])
    assert abs(shifts[0]) > 1e-3 and np.allclose(shifts, shifts[0], rtol=0, atol=1e-10)
    # the summary counts the 60 constrained distances once
    n_free = sum(not p["fixed"] for p in tied.parameters)
    assert tied.n_refined == n_free - 59
    assert f"{n_free} parameters ({n_free - 59} independent" in str(tied)


def test_a_starved_constraint_group_is_one_parameter(p6m):
    """At a threshold no group meets, the message names each constrained group as one
    parameter, and with action=fix all its members are fixed together."""
    table, start = p6m
    options = {**RUN, "auto_reduction__min_nref_per_parameter": 10 ** 7}
    with pytest.raises(InputError, match=r"Detector1Group1Dist, Detector1Group2Dist, .*Detector1Group9Dist: "
                                         r"\d+ reflections for 1 constrained parameter"):
        xrefine.refine(copy.deepcopy(start), table, constraints=["Group?Dist"],
                       **{**options, "auto_reduction__action": "fail"})


def test_modules_with_equal_counts_are_not_one_group(p6m):
    """Two modules that happen to hold the same number of reflections are still separate
    parameter groups for auto-reduction (grouping is by the reflections seen, not the count)."""
    from xrefine.refine import _starved_groups

    table, start = p6m
    problem = _unconstrained_problem(start, table)
    counts = problem.columns_reflection_counts()
    dist_cols = [i for i, n in enumerate(problem.parameter_names) if n.endswith("Dist")]
    values, n_same = np.unique(counts[dist_cols], return_counts=True)
    assert n_same.max() >= 2  # the case exists in this job
    need = int(values[n_same >= 2].min())  # those modules have exactly enough each
    starved = _starved_groups(problem, need)
    assert all(len(qs) == 1 for _, qs, _, _ in starved if qs[0].name.endswith("Dist"))
    assert all(nref < need for _, _, nref, _ in starved)
