"""The engine interface, step records, results and the convergence tests.

An engine minimises the weighted least-squares objective of a `RefinementProblem`.  It asks the
problem for what it needs (`evaluate` for the normal equations JᵀWJ and gradient JᵀWr built
block by block; `residual_vector` / `jacobian` for engines that want rows) and returns an
`EngineResult`.  Esds are not the engine's business: the core computes them afterwards from the
undamped normal matrix at the solution, the same way for every engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

__all__ = ["StepRecord", "EngineResult", "Convergence", "Engine", "gauss_newton_decrement"]


@dataclass
class StepRecord:
    """One row of the steps table: the state *after* `step` steps (step 0 = the start)."""

    step: int
    n_reflections: int
    rmsd: np.ndarray  # (3,) mm, mm, rad
    objective: float  # 0.5 * sum w r^2
    step_norm: float = 0.0  # |dx| in scaled parameter units
    damping: Optional[float] = None  # Levenberg-Marquardt mu
    macrocycle: int = 0
    experiment_set: int = 0  # which independent set of experiments (see refine)


@dataclass
class EngineResult:
    x: np.ndarray
    history: list
    stop_reason: str
    converged: bool
    n_evaluations: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class Convergence:
    """Stop tests shared by the engines (checked after a step is computed, before it is taken).

    - shift: the Gauss-Newton step from the current point, measured in esds
      (sqrt(gᵀN⁻¹g / s²), s² the reduced chi-square), is below `step_tolerance_esd`, or every
      scaled parameter shift is below `absolute_step_tolerance`;
    - RMSD: every RMSD changed by less than `rmsd_tolerance` (relative) in the last step
      (DIALS's test; off when None);
    - target: every RMSD is below `target_rmsd` (mm, mm, rad; off when None);
    - `max_iterations`.
    """

    step_tolerance_esd: float = 0.01
    absolute_step_tolerance: float = 1e-10
    rmsd_tolerance: Optional[float] = None
    target_rmsd: Optional[np.ndarray] = None
    max_iterations: Optional[int] = None

    def check(self, history: list, decrement_esd2: float, step: np.ndarray) -> Optional[str]:
        """A stop reason, or None to go on."""
        cur = history[-1]
        if self.target_rmsd is not None and np.all(cur.rmsd <= self.target_rmsd):
            return "RMSD target achieved"
        if decrement_esd2 < self.step_tolerance_esd**2:
            return f"parameter shifts below {self.step_tolerance_esd:g} esd"
        if step.size and np.max(np.abs(step)) < self.absolute_step_tolerance:
            return "parameter shifts negligible"
        if self.rmsd_tolerance is not None and len(history) >= 2:
            prev = history[-2].rmsd
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(prev > 0, np.abs((prev - cur.rmsd) / prev), 0.0)
            if np.all(rel < self.rmsd_tolerance):
                return "RMSD no longer decreasing"
        # steps of this engine run (step numbers continue across macrocycles)
        if self.max_iterations is not None and cur.step - history[0].step >= self.max_iterations:
            return "reached the maximum number of iterations"
        return None


def gauss_newton_decrement(normal: np.ndarray, gradient: np.ndarray, chi2: float, dof: int) -> tuple:
    """(GN step, squared step length in esds).  Solves N dx = -g by Cholesky (least squares if
    N is singular)."""
    try:
        c = np.linalg.cholesky(normal)
        y = np.linalg.solve(c, -gradient)
        dx = np.linalg.solve(c.T, y)
    except np.linalg.LinAlgError:
        dx = np.linalg.lstsq(normal, -gradient, rcond=None)[0]
    s2 = chi2 / dof if dof > 0 else 1.0
    dec = float(-gradient @ dx) / s2 if s2 > 0 else 0.0
    return dx, dec


class Engine(ABC):
    """A minimiser.  Constructed with the resolved `xrefine.config.Config`."""

    name: str = ""

    def __init__(self, config=None):
        self.config = config

    @abstractmethod
    def run(
        self,
        problem,
        x0: np.ndarray,
        convergence: Convergence,
        on_step: Callable[[StepRecord], None],
    ) -> EngineResult:
        """Minimise from x0; call `on_step` with a StepRecord for the start and every step."""
