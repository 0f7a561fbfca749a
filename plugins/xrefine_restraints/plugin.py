"""Registers the unit-cell restraints, the equal-shift constraints and their options."""

from xrefine.config import Option
from xrefine.hookspecs import hookimpl

from .cell_restraints import build_cell_restraints
from .equal_shift import build_equal_shift
from .option_values import DEFAULTS
from .tie_to_group import GROUP_TARGETS

_CELL = "six numbers a b c alpha beta gamma (Angstrom, degrees)"


@hookimpl
def xrefine_config_options():
    d = DEFAULTS
    return [
        Option("restraints.tie_to_target.values", d["restraints.tie_to_target.values"], "list",
               f"target unit cell, {_CELL}, that the static cells are restrained to (cells refined scan-varying "
               "are not); empty: no tie-to-target restraint"),
        Option("restraints.tie_to_target.sigmas", d["restraints.tie_to_target.sigmas"], "list",
               f"sigmas of the tie-to-target restraint, {_CELL}; weight 1/sigma^2, 0 leaves a parameter free; cell "
               "parameters fixed or made equal by symmetry are restrained once"),
        Option("restraints.tie_to_target.experiments", d["restraints.tie_to_target.experiments"], "list",
               "experiments (0-based ids, ranges such as 2-5) whose crystals are tied to the target; empty: all"),
        Option("restraints.tie_to_group.sigmas", d["restraints.tie_to_group.sigmas"], "list",
               f"sigmas of the tie-to-group restraint, {_CELL}, pulling each static cell towards its group's "
               "mean or median (cells refined scan-varying are not restrained); empty: no tie-to-group restraint"),
        Option("restraints.tie_to_group.target", d["restraints.tie_to_group.target"], "choice",
               "the group's common cell: mean or median (both with exact gradients; DIALS holds the median "
               "constant)",
               choices=GROUP_TARGETS),
        Option("restraints.tie_to_group.experiments", d["restraints.tie_to_group.experiments"], "str",
               "groups of experiments whose crystals are tied together: ';' between groups, ',' between ids, ranges "
               "allowed (\"0,1,2;3-5\", quoted in a shell); empty: all crystals of the job form one group"),
        Option("constraints", d["constraints"], "list",
               "equal-shift constraints, one group per entry PATTERN or PATTERN@IDS: the free parameters whose full "
               "name (e.g. Detector1Group3Dist, Crystal2g_param_0) ends with PATTERN (case-insensitive, wildcards "
               "* ? [..]), of the models of experiments IDS (ids joined by +, ranges a-b; default all), move by one "
               "common shift. Example: constraints=Dist, or constraints=Detector1Group*Dist@0+1"),
    ]


@hookimpl
def xrefine_restraints():
    return {"unit_cell": build_cell_restraints}


@hookimpl
def xrefine_constraints():
    return {"equal_shift": build_equal_shift}
