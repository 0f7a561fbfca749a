"""Beam, crystal orientation, unit cell and goniometer parameterisations: state derivatives
against finite differences at non-zero parameter values, composition, fixing and re-basing."""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.errors import InputError
from xrefine.geometry import rotation_matrix, unit

from xrefine_rotation import (
    BeamParameterisation,
    CrystalOrientationParameterisation,
    CrystalUnitCellParameterisation,
    GoniometerParameterisation,
    make_beam_parameterisation,
    make_crystal_orientation_parameterisation,
    make_crystal_unit_cell_parameterisation,
    make_goniometer_parameterisation,
)
from xrefine_rotation.symmetry import metric_vector, rotation_parts, space_group_ops

LATTICES = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "hexagonal", "rhombohedral", "cubic")

# Steps for the fourth-order central differences: angles in mrad, wavenumber in 1/Angstrom, cell
# parameters relative to their value (all parameters are O(100-1000) units there).
ANGLE_STEP = 0.1
NU_STEP = 1e-4
CELL_RELATIVE_STEP = 1e-3


def check_state_derivatives(sim, param, steps):
    def f(x):
        param.set_free_values(x)
        return param.state()

    analytic = param.state_derivatives()
    fd = np.moveaxis(sim.central_difference(f, param.get_free_values(), steps), -1, 0)
    assert analytic.shape == fd.shape
    # scale: the RMS element of each parameter's derivative
    sim.assert_derivatives_close(fd, analytic, axis_scale=tuple(range(1, analytic.ndim)))


def non_identity_goniometer_experiment(sim):
    S = rotation_matrix(unit([0.2, 0.5, 0.8]), np.radians(12.0))
    F = rotation_matrix(unit([-1.0, 1.0, 2.0]), np.radians(40.0))
    return sim.make_experiment(setting_rotation=S, fixed_rotation=F)


# ------------------------------------------------------------------------------------- beam
@pytest.mark.parametrize("with_goniometer", [True, False])
def test_beam_state_derivatives(sim, with_goniometer):
    e = non_identity_goniometer_experiment(sim)
    param = BeamParameterisation(e.beam, e.goniometer if with_goniometer else None, [0])
    nu = param.parameters[2].value
    param.set_free_values([3.0, -2.0, nu * 1.002])
    check_state_derivatives(sim, param, [ANGLE_STEP, ANGLE_STEP, NU_STEP])
    np.testing.assert_allclose(e.beam.s0, param.state(), rtol=1e-14)
    assert np.linalg.norm(e.beam.s0) == pytest.approx(nu * 1.002, rel=1e-14)


def test_beam_axes_meaning(sim):
    e = non_identity_goniometer_experiment(sim)
    spindle = e.goniometer.rotation_axis_lab
    s0 = e.beam.s0
    param = BeamParameterisation(e.beam, e.goniometer, [0])
    normal = unit(np.cross(s0, spindle))
    # Mu2 swings s0 within the spindle-beam plane, Mu1 tilts it out of the plane
    param.set_free_values([0.0, 5.0, param.parameters[2].value])
    assert abs(unit(e.beam.s0) @ normal) < 1e-14
    param.set_free_values([5.0, 0.0, param.parameters[2].value])
    assert abs(unit(e.beam.s0) @ normal) == pytest.approx(np.sin(5e-3), rel=1e-9)


def test_beam_fix_words(sim):
    e = sim.make_experiment()
    default = make_beam_parameterisation(e.beam, e.goniometer, [0])
    assert [p.name for p in default.free_parameters] == ["Mu2"]
    assert make_beam_parameterisation(e.beam, e.goniometer, [0], fix="all").num_free == 0
    p = make_beam_parameterisation(e.beam, e.goniometer, [0], fix=["out_spindle_plane"])
    assert [q.name for q in p.free_parameters] == ["Mu1", "nu"]
    p = make_beam_parameterisation(e.beam, e.goniometer, [0], fix=("Nu", "mu1"))
    assert [q.name for q in p.free_parameters] == ["Mu2"]
    assert make_beam_parameterisation(e.beam, e.goniometer, [0], fix=None).num_free == 3
    p = make_beam_parameterisation(e.beam, e.goniometer, [0], name="Beam2", fix=["Beam2Mu2", 0])
    assert [q.name for q in p.free_parameters] == ["nu"]
    with pytest.raises(InputError, match="beam.fix"):
        make_beam_parameterisation(e.beam, e.goniometer, [0], fix=["sideways"])


def test_beam_rebase_keeps_state_and_polarization_follows(sim):
    e = sim.make_experiment()
    e.beam.extra["polarization_normal"] = [0.0, 1.0, 0.0]
    param = make_beam_parameterisation(e.beam, e.goniometer, [0], fix=())
    param.set_free_values([1.0, 2.0, param.parameters[2].value])
    pn = np.array(e.beam.extra["polarization_normal"])
    assert abs(pn @ unit(e.beam.s0)) < 1e-12  # still perpendicular to the moved beam
    s0 = e.beam.s0.copy()
    param.rebase()
    assert [p.value for p in param.parameters[:2]] == [0.0, 0.0]
    np.testing.assert_allclose(param.state(), s0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(e.beam.s0, s0, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------ orientation
def test_orientation_state_derivatives(sim):
    e = sim.make_experiment()
    param = CrystalOrientationParameterisation(e.crystal, [0])
    param.set_free_values([2.0, -3.0, 1.5])
    check_state_derivatives(sim, param, [ANGLE_STEP] * 3)


def test_orientation_compose_keeps_cell_and_rebase(sim):
    e = sim.make_experiment()
    cell = e.crystal.unit_cell
    assert make_crystal_orientation_parameterisation(e.crystal, [0], fix="phi").num_free == 0
    param = make_crystal_orientation_parameterisation(e.crystal, [0], fix=["Phi2"])
    assert [p.name for p in param.free_parameters] == ["Phi1", "Phi3"]
    param.set_free_values([4.0, -1.0])
    np.testing.assert_allclose(e.crystal.unit_cell, cell, rtol=1e-12)
    np.testing.assert_allclose(e.crystal.U, param.state(), atol=1e-14)
    U = param.state()
    param.rebase()
    np.testing.assert_allclose(param.state(), U, atol=1e-15)
    assert all(p.value == 0.0 for p in param.parameters)


# -------------------------------------------------------------------------------- unit cell
@pytest.mark.parametrize("lattice", list(LATTICES))
def test_unit_cell_state_derivatives(sim, lattice):
    e = sim.make_experiment(lattice=lattice)
    param = CrystalUnitCellParameterisation(e.crystal, [0])
    x = param.get_free_values() * (1.0 + 0.004 * np.arange(1, param.num_free + 1))
    param.set_free_values(x)
    check_state_derivatives(sim, param, CELL_RELATIVE_STEP * np.abs(x))


EXPECTED_INDEPENDENT = {
    "triclinic": [0, 1, 2, 3, 4, 5],
    "monoclinic": [0, 1, 2, 4],
    "orthorhombic": [0, 1, 2],
    "tetragonal": [1, 2],
    "hexagonal": [2, 3],
    "rhombohedral": [2, 5],
    "cubic": [2],
}


@pytest.mark.parametrize("lattice", list(LATTICES))
def test_unit_cell_symmetry(sim, lattice):
    e = sim.make_experiment(lattice=lattice)
    hall = e.crystal.space_group_hall_symbol
    # break the symmetry a little: the parameterisation must symmetrise it
    e.crystal.set_A(e.crystal.A @ (np.eye(3) + 1e-4 * np.random.default_rng(5).normal(size=(3, 3))))
    param = CrystalUnitCellParameterisation(e.crystal, [0])
    assert list(param.independent) == EXPECTED_INDEPENDENT[lattice]
    x = param.get_free_values() * (1.0 + 0.01 * np.arange(1, param.num_free + 1))
    param.set_free_values(x)
    B = e.crystal.B
    np.testing.assert_allclose(B, param.state(), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(metric_vector(B.T @ B), param.metric(), rtol=1e-12, atol=1e-16)
    assert np.allclose(np.triu(B, 1), 0.0)
    G = B.T @ B
    for R in rotation_parts(space_group_ops(hall)):
        np.testing.assert_allclose(R @ G @ R.T, G, rtol=0, atol=1e-15)
    a, b, c, al, be, ga = e.crystal.unit_cell
    relations = {
        "monoclinic": [(al, 90), (ga, 90)],
        "orthorhombic": [(al, 90), (be, 90), (ga, 90)],
        "tetragonal": [(a, b), (al, 90), (be, 90), (ga, 90)],
        "hexagonal": [(a, b), (al, 90), (be, 90), (ga, 120)],
        "rhombohedral": [(a, b), (b, c), (al, be), (be, ga)],
        "cubic": [(a, b), (b, c), (al, 90), (be, 90), (ga, 90)],
    }
    for x1, x2 in relations.get(lattice, []):
        assert x1 == pytest.approx(x2, rel=1e-12)


def test_unit_cell_names_and_fix(sim):
    e = sim.make_experiment(lattice="tetragonal")
    param = make_crystal_unit_cell_parameterisation(e.crystal, [0], fix=["g_param_1"])
    assert [p.name for p in param.parameters] == ["g_param_0", "g_param_1"]
    assert [p.name for p in param.free_parameters] == ["g_param_0"]
    # g_param_0 is 1e5 g11 = 1e5 / a^2 for a tetragonal cell
    assert param.parameters[0].value == pytest.approx(1e5 / e.crystal.unit_cell[0] ** 2, rel=1e-12)
    assert make_crystal_unit_cell_parameterisation(e.crystal, [0], fix="all").num_free == 0


@pytest.mark.parametrize("lattice", ["triclinic", "monoclinic", "hexagonal", "rhombohedral"])
def test_cell_parameter_gradients(sim, lattice):
    e = sim.make_experiment(lattice=lattice)
    param = CrystalUnitCellParameterisation(e.crystal, [0])
    x = param.get_free_values() * (1.0 + 0.003 * np.arange(1, param.num_free + 1))
    param.set_free_values(x)

    def cell(xx):
        param.set_free_values(xx)
        return e.crystal.unit_cell

    fd = sim.central_difference(cell, x, CELL_RELATIVE_STEP * np.abs(x)).T  # (k, 6)
    analytic = param.cell_parameter_gradients()
    assert analytic.shape == (param.num_free, 6)
    sim.assert_derivatives_close(fd, analytic, axis_scale=None)


# ------------------------------------------------------------------------------- goniometer
@pytest.mark.parametrize("with_beam", [True, False])
def test_goniometer_state_derivatives(sim, with_beam):
    e = non_identity_goniometer_experiment(sim)
    param = GoniometerParameterisation(e.goniometer, e.beam if with_beam else None, [0])
    param.set_free_values([2.0, -1.5])
    check_state_derivatives(sim, param, [ANGLE_STEP] * 2)
    np.testing.assert_allclose(e.goniometer.setting_rotation, param.state(), atol=1e-15)
    S = param.state()
    np.testing.assert_allclose(S @ S.T, np.eye(3), atol=1e-14)


def test_goniometer_axes_meaning_and_fix(sim):
    e = non_identity_goniometer_experiment(sim)
    s0 = unit(e.beam.s0)
    normal = unit(np.cross(e.goniometer.rotation_axis_lab, s0))
    assert make_goniometer_parameterisation(e.goniometer, e.beam, [0]).num_free == 0
    p = make_goniometer_parameterisation(e.goniometer, e.beam, [0], fix=["in_beam_plane"])
    assert [q.name for q in p.free_parameters] == ["Gamma2"]
    # Gamma2 turns the spindle within the spindle-beam plane ...
    p.set_free_values([3.0])
    assert abs(e.goniometer.rotation_axis_lab @ normal) < 1e-14
    p = make_goniometer_parameterisation(e.goniometer, e.beam, [0], fix=["out_beam_plane"])
    assert [q.name for q in p.free_parameters] == ["Gamma1"]
    # ... and Gamma1 tilts it out of the plane
    p.set_free_values([3.0])
    assert abs(e.goniometer.rotation_axis_lab @ normal) == pytest.approx(np.sin(3e-3), rel=1e-9)
    p.rebase()
    assert p.get_free_values()[0] == 0.0
