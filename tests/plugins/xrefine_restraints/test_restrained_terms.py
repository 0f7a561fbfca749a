"""Which cell parameters a restraint acts on: sigma 0 drops a term, symmetry-fixed parameters
are dropped, and of symmetry-equal ones only the tightest is kept (MATH.md 9.1)."""

import numpy as np
import pytest
from restraint_cases import LATTICES, RESTRAINED, unit_cell

from xrefine_restraints import cell_and_gradients, restrained_terms


@pytest.mark.parametrize("lattice", list(LATTICES))
def test_symmetry_leaves_one_term_per_independent_cell_parameter(lattice):
    p = unit_cell(lattice, seed=3)
    terms, sig = restrained_terms(*cell_and_gradients(p), np.ones(6))
    assert list(terms) == RESTRAINED[lattice]
    assert np.all(sig == 1.0)


@pytest.mark.parametrize("lattice, sigmas, expected", [
    ("tetragonal", [0.2, 0.1, 0.3, 1, 1, 1], {1: 0.1, 2: 0.3}),  # b tighter than a: b is kept
    ("tetragonal", [0.0, 0.2, 0.3, 1, 1, 1], {1: 0.2, 2: 0.3}),  # a switched off: b stands for it
    ("cubic", [0.3, 0.2, 0.1, 1, 1, 1], {2: 0.1}),
    ("cubic", [0.1, 0.2, 0.1, 1, 1, 1], {0: 0.1}),  # a tie: the first
    ("rhombohedral", [0.5, 0.5, 0.5, 2.0, 0.5, 1.0], {0: 0.5, 4: 0.5}),
    ("hexagonal", [0.1, 0.1, 0.0, 1, 1, 1], {0: 0.1}),  # sigma 0 on c
    ("triclinic", [0.1, 0.0, 0.1, 1, 0, 1], {0: 0.1, 2: 0.1, 3: 1, 5: 1}),
])
def test_sigmas_choose_among_equal_terms(lattice, sigmas, expected):
    p = unit_cell(lattice, seed=4)
    terms, sig = restrained_terms(*cell_and_gradients(p), np.array(sigmas, dtype=float))
    assert dict(zip(terms.tolist(), sig.tolist())) == expected


def test_triclinic_cell_with_accidentally_equal_edges_keeps_both():
    """Equal values are not enough: symmetry-equal parameters also have equal gradients."""
    from xrefine_rotation.unit_cell import make_crystal_unit_cell_parameterisation
    from xrefine_simulate.presets import make_crystal

    p = make_crystal_unit_cell_parameterisation(make_crystal((30, 30, 40, 80, 85, 95), "P 1", np.eye(3)), [0])
    terms, _ = restrained_terms(*cell_and_gradients(p), np.ones(6))
    assert list(terms) == [0, 1, 2, 3, 4, 5]


def test_a_cell_without_free_parameters_has_no_terms():
    p = unit_cell("orthorhombic")
    for q in p.parameters:
        q.fixed = True
    terms, sig = restrained_terms(*cell_and_gradients(p), np.ones(6))
    assert len(terms) == 0 and len(sig) == 0
