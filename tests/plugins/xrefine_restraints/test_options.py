"""The plugin's options: syntax, defaults, and one clear InputError naming the option for every
mistake a user can make."""

import copy

import numpy as np
import pytest
from restraint_cases import joint_wedges
from xrefine.config import build_config
from xrefine.errors import InputError
from xrefine.refine import build_parameterisations

from xrefine_restraints import TieToGroup, TieToTarget, build_cell_restraints, build_equal_shift
from xrefine_restraints.option_values import experiment_groups, experiment_ids

THAUMATIN = "57.8,57.8,150.2,90,90,90"


@pytest.fixture(scope="module")
def job(sim):
    """Four thaumatin wedges sharing beam and detector (experiments 0-3, crystals 1-4)."""
    return joint_wedges(sim, [1, 2, 3, 4]).experiments


def _build(job, *arguments, **overrides):
    cfg = build_config(None, list(arguments), overrides)
    experiments = copy.deepcopy(job)
    params = build_parameterisations(experiments, cfg)
    return params, build_cell_restraints(params, experiments, cfg), build_equal_shift(params, experiments, cfg)


def test_defaults_add_nothing(job):
    cfg = build_config()
    assert cfg["restraints.tie_to_target.values"] == [] and cfg["restraints.tie_to_group.sigmas"] == []
    assert cfg["restraints.tie_to_group.target"] == "mean" and cfg["constraints"] == []
    _, restraints, constraints = _build(job)
    assert restraints == [] and constraints == []


def test_options_from_the_command_line_and_a_toml_file(job, tmp_path):
    toml = tmp_path / "job.toml"
    toml.write_text(
        "scan_varying = 'false'\nconstraints = ['Crystal*g_param_1']\n"
        "[restraints.tie_to_target]\nvalues = [57.8, 57.8, 150.2, 90, 90, 90]\nsigmas = [0.1, 0.1, 0.1, 0, 0, 0]\n"
        "experiments = ['0-1']\n"
        "[restraints.tie_to_group]\nsigmas = [0.01, 0.01, 0.01, 0, 0, 0]\nexperiments = [[0, 1], [2, 3]]\n"
        "target = 'median'\n"
    )
    cfg = build_config(str(toml), ["restraints.tie_to_target.sigmas=0.2,0.2,0.2,0,0,0"])
    experiments = copy.deepcopy(job)
    params = build_parameterisations(experiments, cfg)
    restraints = build_cell_restraints(params, experiments, cfg)
    targets = [r for r in restraints if isinstance(r, TieToTarget)]
    groups = [r for r in restraints if isinstance(r, TieToGroup)]
    assert [r.parameterisation.name for r in targets] == ["Crystal1", "Crystal2"]
    assert np.allclose(targets[0].weights, 1 / 0.2**2)  # the command line beats the file
    assert [[p.name for p in g.members] for g in groups] == [["Crystal1", "Crystal2"], ["Crystal3", "Crystal4"]]
    assert all(g.target == "median" for g in groups)
    constraints = build_equal_shift(params, experiments, cfg)
    assert [[p.name + q.name for p, q in g] for g in constraints] == [[f"Crystal{i}g_param_1" for i in range(1, 5)]]


def test_tie_to_target_defaults_to_every_crystal_and_skips_symmetry_fixed_terms(job):
    _, restraints, _ = _build(job, f"restraints.tie_to_target.values={THAUMATIN}",
                              "restraints.tie_to_target.sigmas=0.1,0.1,0.2,1,1,1")
    assert [r.parameterisation.name for r in restraints] == ["Crystal1", "Crystal2", "Crystal3", "Crystal4"]
    assert all(list(r.terms) == [0, 2] for r in restraints)  # a (= b) and c; the right angles are fixed


def test_tie_to_group_default_is_one_group_of_all_crystals(job):
    _, restraints, _ = _build(job, "restraints.tie_to_group.sigmas=0.01,0.01,0.01,0,0,0")
    assert len(restraints) == 1
    assert [p.name for p in restraints[0].members] == ["Crystal1", "Crystal2", "Crystal3", "Crystal4"]
    assert restraints[0].target == "mean"


def test_a_group_of_one_crystal_restrains_nothing(job):
    _, restraints, _ = _build(job, "restraints.tie_to_group.sigmas=0.01,0.01,0.01,0,0,0",
                              "restraints.tie_to_group.experiments=0,1,2;3")
    assert [[p.name for p in r.members] for r in restraints] == [["Crystal1", "Crystal2", "Crystal3"]]


@pytest.mark.parametrize("text, groups", [
    ("0,1,2;3,4", [[0, 1, 2], [3, 4]]),
    ("0-2; 4 3", [[0, 1, 2], [3, 4]]),
    ("[[0, 1, 2], [3, 4]]", [[0, 1, 2], [3, 4]]),
    ("[0, 2]", [[0, 2]]),
    ("", None),
    ("all", None),
])
def test_group_syntax(text, groups):
    assert experiment_groups(text, "key", 5) == groups


def test_id_syntax():
    assert experiment_ids(["0", "2-4"], "key", 5) == {0, 2, 3, 4}
    assert experiment_ids([], "key", 5) is None and experiment_ids(["all"], "key", 5) is None


T, G = "restraints.tie_to_target", "restraints.tie_to_group"


@pytest.mark.parametrize("arguments, message", [
    ([f"{T}.values=57.8,57.8,150.2,90,90"], f"{T}.values: expected six numbers"),
    ([f"{T}.values=57.8,57.8,big,90,90,90"], f"{T}.values: 'big' is not a number"),
    ([f"{T}.values=57.8,57.8,150.2,90,90,190", f"{T}.sigmas=1,1,1,1,1,1"],
     f"{T}.values: a target cell needs positive edges and angles between 0 and 180"),
    ([f"{T}.values={THAUMATIN}"], f"{T}.values is set but {T}.sigmas is not"),
    ([f"{T}.sigmas=1,1,1,1,1,1"], f"{T}.sigmas is set but {T}.values is not"),
    ([f"{G}.sigmas=0.1,0.1,-0.1,0,0,0"], f"{G}.sigmas: sigmas must be >= 0"),
    ([f"{T}.values={THAUMATIN}", f"{T}.sigmas=1,1,1,1,1,1", f"{T}.experiments=0,7"],
     f"{T}.experiments: experiment 7 does not exist; this job has 4"),
    ([f"{G}.sigmas=1,1,1,0,0,0", f"{G}.experiments=0,1;3-2"], f"{G}.experiments: '3-2' is not an experiment id"),
    ([f"{G}.sigmas=1,1,1,0,0,0", f"{G}.experiments=0,1;1,2"], f"{G}.experiments: experiment 1 is in groups 1 and 2"),
    ([f"{G}.sigmas=1,1,1,0,0,0", f"{G}.experiments=0,1;;2"], f"{G}.experiments: .* has an empty group"),
    ([f"{G}.target=mode"], f"{G}.target='mode' is not one of: mean, median"),
    (["constraints=Disst"], "constraints: entry 'Disst' matches no free parameter"),
    (["constraints=Dist@9"], "constraints entry 'Dist@9': experiment 9 does not exist"),
    (["constraints=@0"], "constraints: entry '@0' has no parameter-name pattern"),
    (["constraints=Crystal1*"], r"constraints: entry 'Crystal1\*' matches parameters in different units"),
    (["constraints=Crystal*g_param_0 Crystal[12]g_param_*0"],
     "Crystal1g_param_0 is matched by entries 'Crystal.g_param_0' and"),
])
def test_mistakes_are_input_errors_naming_the_option(job, arguments, message):
    with pytest.raises(InputError, match=message):
        _build(job, *arguments, scan_varying="false")


def test_a_crystal_in_two_groups_is_an_error(job):
    """Two experiments of one crystal put in different groups."""
    experiments = copy.deepcopy(job)
    experiments[1].crystal = experiments[0].crystal
    cfg = build_config(None, [f"{G}.sigmas=1,1,1,0,0,0", f"{G}.experiments=0,2;1,3"])
    params = build_parameterisations(experiments, cfg)
    with pytest.raises(InputError, match=r"Crystal1 \(experiments 0, 1\) is in groups 1 and 2"):
        build_cell_restraints(params, experiments, cfg)


def test_builders_work_with_a_configuration_made_before_the_plugin_was_registered(job):
    """A configuration without this plugin's options means: no restraints, no constraints."""
    from xrefine.config import Config, core_options

    cfg = Config(options={o.key: o for o in core_options()}, values={o.key: o.default for o in core_options()})
    experiments = copy.deepcopy(job)
    params = build_parameterisations(experiments, build_config())
    assert build_cell_restraints(params, experiments, cfg) == []
    assert build_equal_shift(params, experiments, cfg) == []
