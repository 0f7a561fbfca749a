"""The parameterisation interface: free parameters -> one model's state, with d(state)/dp.

A parameterisation declares the *state kind* it moves; predictors know how each kind enters a
prediction.  State kinds and shapes (k = number of free parameters):

=================  ======================================  =====================================
kind               state                                    state_derivatives()
=================  ======================================  =====================================
``beam.s0``        s0 (3,), 1/Angstrom                      (k, 3)
``crystal.U``      U (3, 3)                                 (k, 3, 3)
``crystal.B``      B (3, 3), 1/Angstrom                     (k, 3, 3)
``goniometer.S``   setting rotation S (3, 3)                (k, 3, 3)
``detector.d``     [fast|slow|origin] of every panel        (k, n_panels, 3, 3)
                   (n_panels, 3, 3), mm
=================  ======================================  =====================================

Parameters are stored in scaled units so that natural shifts have comparable size: angles in
mrad, lengths in mm, wavenumber in 1/Angstrom, metrical-matrix elements x 1e5 (MATH.md 4.0).
Engines only ever see the vector of free values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["Parameter", "Parameterisation", "ScanVaryingParameterisation", "STATE_KINDS"]

STATE_KINDS = ("beam.s0", "crystal.U", "crystal.B", "goniometer.S", "detector.d")


@dataclass
class Parameter:
    """One scalar parameter: `value` and `esd` are in `unit` (scaled units, see module doc).

    `name` is the short DIALS-style name ('Mu2', 'Phi1', 'g_param_0', 'Dist', 'Tau1', ...);
    reports show it prefixed with the parameterisation's name ('Beam1Mu2').
    """

    name: str
    value: float
    unit: str
    fixed: bool = False
    esd: Optional[float] = None


class Parameterisation(ABC):
    """Maps a vector of free parameters onto the state of one model object.

    Subclasses set `kind` (one of STATE_KINDS), build `self.parameters` in `__init__`, and
    implement `compose` (write the state for the current values into `self.model`) and
    `state_derivatives` (d state / d p for the *free* parameters at the current values).
    `self.model` is the model object moved (shared by identity between experiments), and
    `self.experiment_ids` lists the experiments that use it.
    """

    kind: str = ""
    scan_varying = False

    def __init__(self, model, experiment_ids, name: str):
        self.model = model
        self.experiment_ids = list(experiment_ids)
        self.name = name
        self.parameters: list[Parameter] = []

    # --- free-parameter vector
    @property
    def free_parameters(self) -> list:
        return [p for p in self.parameters if not p.fixed]

    @property
    def num_free(self) -> int:
        return sum(not p.fixed for p in self.parameters)

    def get_free_values(self) -> np.ndarray:
        return np.array([p.value for p in self.parameters if not p.fixed], dtype=float)

    def set_free_values(self, values) -> None:
        """Set the free parameters and compose the model state."""
        values = np.asarray(values, dtype=float)
        if len(values) != self.num_free:
            raise ValueError(f"{self.name}: expected {self.num_free} values, got {len(values)}")
        for p, v in zip(self.free_parameters, values):
            p.value = float(v)
        self.compose()

    def fix(self, names) -> None:
        """Fix the parameters whose short names (e.g. 'Mu1', 'Tau2') are in `names`."""
        names = set(names)
        for p in self.parameters:
            if p.name in names:
                p.fixed = True

    # --- state
    @abstractmethod
    def compose(self) -> None:
        """Write the state for the current parameter values into the model."""

    @abstractmethod
    def state(self) -> np.ndarray:
        """The current state (shape in the module table)."""

    @abstractmethod
    def state_derivatives(self) -> np.ndarray:
        """d(state)/d(p) for each free parameter (shape in the module table)."""

    def panel_columns(self, panel: int) -> np.ndarray:
        """Indices (into the free parameters) that can move `panel`; detector parameterisations
        override this so that a reflection's Jacobian row only holds its own groups' columns."""
        return np.arange(self.num_free)

    def rebase(self) -> None:
        """Make the current state the new reference (angles back to zero), if the
        parameterisation has one.  The state must not change.  The core's own flow does not
        re-base (reported values stay shifts from the starting model); a plugin or a script that
        restarts refinement from a converged point may."""


class ScanVaryingParameterisation(Parameterisation):
    """A parameterisation whose state varies along a scan (made by a smoother plugin from a
    static one).  Its free parameters are values at sample points; the state at a frame t
    (the scan's continuous image coordinate) and its derivatives come from them.

    The problem calls `prepare(frames)` once per evaluation, after the values were set, with
    every frame at which it will ask for states; `states_at` / `derivatives_at` are then
    gathers.  For ``detector.d`` the `panel` argument selects one panel's matrix; other kinds
    ignore it.  `scan_varying` tells the problem to use the per-row interface.
    """

    scan_varying = True

    #: experiment index whose scan the frames refer to
    scan_experiment: int = 0

    @abstractmethod
    def prepare(self, frames: np.ndarray) -> None:
        """Compose (and cache) states and derivatives at these frames (sorted, unique)."""

    @abstractmethod
    def states_at(self, frames: np.ndarray, panel: int = 0) -> np.ndarray:
        """State at each frame: (n, 3) for beam.s0, (n, 3, 3) for matrices and one panel's d."""

    @abstractmethod
    def derivatives_at(self, frames: np.ndarray, columns: np.ndarray, panel: int = 0) -> np.ndarray:
        """d(state)/d(free parameter) for the given local free columns at each frame:
        (n, len(columns), 3) or (n, len(columns), 3, 3); zero where a column does not act."""

    @abstractmethod
    def columns_between(self, frame_lo: float, frame_hi: float, panel: int = 0) -> np.ndarray:
        """Local free columns that can act on some frame in [frame_lo, frame_hi] (and panel)."""

    @property
    @abstractmethod
    def window_frames(self) -> float:
        """A frame range short enough that a chunk of reflections within it touches only a few
        samples (the problem splits its blocks at this width)."""
