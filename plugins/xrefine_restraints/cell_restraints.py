"""Builds the unit-cell restraints the options ask for (hook ``xrefine_restraints``)."""

from __future__ import annotations

import numpy as np

from xrefine.errors import InputError

from .option_values import cell_numbers, experiment_groups, experiment_ids, option
from .tie_to_group import GROUP_TARGETS, TieToGroup
from .tie_to_target import TieToTarget
from .unit_cell_terms import cell_and_gradients, restrainable_cells, restrained_terms

__all__ = ["build_cell_restraints"]

_TARGET = "restraints.tie_to_target"
_GROUP = "restraints.tie_to_group"


def build_cell_restraints(parameterisations, experiments, config) -> list:
    """TieToTarget per selected crystal and TieToGroup per group of crystals, on the static
    unit-cell parameterisations among `parameterisations`."""
    cells = restrainable_cells(parameterisations)
    n = len(experiments)
    return _tie_to_target(cells, config, n) + _tie_to_group(cells, config, n)


def _uses_any(p, ids) -> bool:
    return ids is None or bool(ids.intersection(p.experiment_ids))


def _tie_to_target(cells, config, n_experiments) -> list:
    values = cell_numbers(option(config, f"{_TARGET}.values"), f"{_TARGET}.values", sigmas=False)
    sigmas = cell_numbers(option(config, f"{_TARGET}.sigmas"), f"{_TARGET}.sigmas", sigmas=True)
    if values is None and sigmas is None:
        return []
    if values is None or sigmas is None:
        given, missing = ("values", "sigmas") if sigmas is None else ("sigmas", "values")
        raise InputError(f"{_TARGET}.{given} is set but {_TARGET}.{missing} is not; "
                         "a tie-to-target restraint needs six target values and six sigmas")
    ids = experiment_ids(option(config, f"{_TARGET}.experiments"), f"{_TARGET}.experiments", n_experiments)
    out = []
    for p in cells:
        if not _uses_any(p, ids):
            continue
        cell, grads = cell_and_gradients(p)
        terms, term_sigmas = restrained_terms(cell, grads, sigmas)
        if len(terms):
            out.append(TieToTarget(p, values, terms, term_sigmas))
    return out


def _tie_to_group(cells, config, n_experiments) -> list:
    sigmas = cell_numbers(option(config, f"{_GROUP}.sigmas"), f"{_GROUP}.sigmas", sigmas=True)
    if sigmas is None:
        return []
    target = option(config, f"{_GROUP}.target")
    if target not in GROUP_TARGETS:
        raise InputError(f"{_GROUP}.target={target!r} is not one of: {', '.join(GROUP_TARGETS)}")
    groups = experiment_groups(option(config, f"{_GROUP}.experiments"), f"{_GROUP}.experiments", n_experiments)
    if groups is None:
        member_lists = [cells]
    else:
        member_lists = [[p for p in cells if _uses_any(p, set(g))] for g in groups]
        _check_one_group_per_crystal(member_lists)
    out = []
    for members in member_lists:
        if len(members) < 2:
            continue  # a crystal alone is its own mean: nothing to restrain
        keep = np.zeros(6, dtype=bool)
        term_sigma = np.zeros(6)
        for p in members:
            terms, s = restrained_terms(*cell_and_gradients(p), sigmas)
            keep[terms] = True
            term_sigma[terms] = s
        terms = np.flatnonzero(keep)
        if len(terms):
            out.append(TieToGroup(members, terms, term_sigma[terms], target))
    return out


def _check_one_group_per_crystal(member_lists) -> None:
    seen = {}
    for k, members in enumerate(member_lists):
        for p in members:
            if id(p) in seen and seen[id(p)] != k:
                raise InputError(
                    f"{_GROUP}.experiments: {p.name} (experiments {', '.join(map(str, p.experiment_ids))}) is in "
                    f"groups {seen[id(p)] + 1} and {k + 1}; put all experiments of one crystal in the same group"
                )
            seen[id(p)] = k
