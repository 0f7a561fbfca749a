"""The predictor interface: calculated centroids and their derivatives for a batch of reflections.

A predictor works on NumPy arrays of one experiment and one panel at a time (the problem keeps
reflections sorted by experiment and panel, so every batch is a contiguous slice).  It never
loops over reflections in Python.

The third component of a prediction is the rotation angle phi (rad) for scans, or Delta-Psi
(rad) for stills.  X and Y are millimetres on the reflection's panel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .models import Experiment

__all__ = ["ExperimentState", "StateDerivative", "PredictionBlock", "Predictor"]


@dataclass
class ExperimentState:
    """Everything a prediction needs, as arrays.

    Any of s0, U, B, S, d may carry a leading per-reflection axis ((n, 3) or (n, 3, 3)) when the
    models vary along the scan; a predictor must accept both forms.  `d` is the panel matrix
    [fast | slow | origin] of the batch's panel.
    """

    s0: np.ndarray
    U: np.ndarray
    B: np.ndarray
    d: np.ndarray
    F: np.ndarray
    S: np.ndarray
    axis: np.ndarray  # datum rotation axis e_d (unit)

    @classmethod
    def from_experiment(cls, experiment: Experiment, panel: int) -> "ExperimentState":
        g = experiment.goniometer
        from .geometry import unit

        return cls(
            s0=experiment.beam.s0,
            U=experiment.crystal.U,
            B=experiment.crystal.B,
            d=experiment.detector[panel].d,
            F=g.fixed_rotation if g is not None else np.eye(3),
            S=g.setting_rotation if g is not None else np.eye(3),
            axis=unit(g.rotation_axis) if g is not None else np.array([1.0, 0.0, 0.0]),
        )


@dataclass
class StateDerivative:
    """d(state)/dp for k parameters of one state kind.

    `values` has shape (k, 3) for ``beam.s0`` and (k, 3, 3) for matrices (``crystal.U``,
    ``crystal.B``, ``goniometer.S``, and ``detector.d`` of the batch's panel); with a leading
    per-reflection axis ((n, k, 3) or (n, k, 3, 3)) when the models vary along the scan.
    """

    kind: str
    values: np.ndarray


@dataclass
class PredictionBlock:
    """Predictions for n reflections.

    xyz: (n, 3) calculated X (mm), Y (mm), phi or Delta-Psi (rad); rows where `valid` is False
    have no prediction (no Ewald solution, or the ray misses the panel plane) and hold NaN.
    s1: (n, 3) diffracted beam vectors (1/Angstrom).
    jacobian: (n, 3, K) derivatives of xyz with respect to the parameters of the
    StateDerivatives given, in order (K = sum of their k), or None if none were asked for.
    """

    xyz: np.ndarray
    s1: np.ndarray
    valid: np.ndarray
    jacobian: Optional[np.ndarray] = None


class Predictor(ABC):
    """Computes calculated centroids and their derivatives (see module doc)."""

    #: names of the three residual dimensions, for reports
    dimensions: tuple = ("X", "Y", "phi")

    @abstractmethod
    def applies_to(self, experiment: Experiment) -> bool:
        """True if this predictor handles this kind of experiment."""

    @abstractmethod
    def predict(
        self,
        state: ExperimentState,
        miller_index: np.ndarray,
        entering: np.ndarray,
        phi_obs: np.ndarray,
        derivatives: Sequence[StateDerivative] = (),
    ) -> PredictionBlock:
        """Predict the observed reflections of one panel: each for its own Miller index and
        entering flag, phi on the same turn as `phi_obs` (rad).  Derivatives as requested."""

    def predict_all(self, experiment: Experiment, d_min: Optional[float] = None):
        """All reflections of the experiment to `d_min` (Angstrom) that reach a panel: a
        ReflectionTable with miller_index, entering, panel, s1, xyzcal.mm, xyzcal.px, flags.
        Optional: predictors that cannot enumerate reflections raise NotImplementedError."""
        raise NotImplementedError
