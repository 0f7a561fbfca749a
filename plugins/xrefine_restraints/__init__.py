"""xrefine_restraints plugin: unit-cell restraints and equal-shift constraints (MATH.md 9).

Restraints are extra weighted residuals on the real-space cells (a, b, c in Angstrom, alpha,
beta, gamma in degrees) of the static unit-cell parameterisations, as in DIALS:

- tie to target: ``c - c_target`` per restrained cell parameter, weight 1/sigma^2
  (`TieToTarget`; options ``restraints.tie_to_target.*``);
- tie to group: ``c_i - mean`` (gradients (1 - 1/N) and -1/N) or ``c_i - median`` over a
  group of crystals, with exact gradients for both (`TieToGroup`, which says why the median's
  differ from DIALS's; options ``restraints.tie_to_group.*``).

A cell parameter is not restrained where sigma is 0, where symmetry fixes it (every gradient
below 1e-10, e.g. the right angles of an orthorhombic cell), or where symmetry makes it equal
to another one (a = b of a tetragonal cell, alpha = beta = gamma of a rhombohedral one): of
those only the one with the smallest sigma is kept.  Scan-varying cells are never restrained.

Equal-shift constraints (option ``constraints``): each entry is ``PATTERN`` or
``PATTERN@IDS`` and makes one group of the free parameters whose full name (parameterisation
name + parameter name, e.g. ``Detector1Group3Dist``, ``Crystal2g_param_0``, ``Beam1Mu2``)
*ends with* PATTERN, matched case-insensitively with shell wildcards (``*``, ``?``, ``[..]``).
``@IDS`` keeps only models used by those experiments: 0-based ids joined by ``+``, ranges
``a-b`` (``Dist@0-3+7``).  The group moves by one common shift, keeping its initial
differences (`build_equal_shift`).  So ``constraints=Dist`` ties the Dist of every detector
group of every detector, and ``constraints=Detector1Group*Dist`` those of detector 1 only.
Parameters that vary along a scan, or that the job's scan-varying phase will make vary, cannot
be constrained (an InputError says which ``force_static`` option to set).
"""

from .cell_restraints import build_cell_restraints
from .equal_shift import build_equal_shift, parse_constraint
from .tie_to_group import TieToGroup
from .tie_to_target import TieToTarget
from .unit_cell_terms import CELL_NAMES, cell_and_gradients, restrained_terms

__all__ = [
    "build_cell_restraints",
    "TieToTarget",
    "TieToGroup",
    "build_equal_shift",
    "parse_constraint",
    "CELL_NAMES",
    "cell_and_gradients",
    "restrained_terms",
]
