"""Restraints (extra weighted residuals on the parameters) and equal-shift constraints.

A restraint plugin returns `Restraint` objects; each gives, at the problem's current parameter
values, some rows (residual, weight, derivatives with respect to a few columns of the full
parameter vector).  The problem adds them to the objective and the normal equations; they
count as equations for the degrees of freedom.

A constraint is a group of full-vector columns that move by one common shift (MATH.md §9.2):
the engines then see one column for the group, the sum of the members' columns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

__all__ = ["RestraintRows", "Restraint"]


@dataclass
class RestraintRows:
    """m restraint rows: residuals (m,), weights (m,), jacobian (m, k) with respect to the
    full-vector `columns` (k,)."""

    residuals: np.ndarray
    weights: np.ndarray
    jacobian: np.ndarray
    columns: np.ndarray


class Restraint(ABC):
    """Extra least-squares rows that depend on a few parameters."""

    name: str = ""

    @abstractmethod
    def rows(self, problem) -> RestraintRows:
        """The rows at the problem's current parameter values.  Use `problem.parameterisations`
        and `problem.offsets` (full-vector offsets of each parameterisation's free
        parameters) to find the columns; they may change between calls (auto-reduction)."""
