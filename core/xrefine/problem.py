"""`RefinementProblem`: experiments + observations + parameterisations + predictors ->
residuals, weights, block-sparse Jacobian, normal equations and gradient.

Reflections are kept sorted by experiment, panel and phi, so every *block* (one experiment, one
panel, at most `chunk_size` rows, and for scan-varying models one short window of frames) is a
contiguous slice.  A block's Jacobian has only the columns
of the parameterisations that move its experiment and panel; its contribution to JᵀWJ is one
BLAS product of a (3·rows × k) slice, scattered into the n × n normal matrix.  Memory therefore
stays proportional to the reflections plus n², never to rows × parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp

from .models import ExperimentList
from .parameters import Parameterisation
from .predictor import ExperimentState, Predictor, StateDerivative
from .restraints import Restraint

__all__ = ["Observations", "Evaluation", "RefinementProblem"]


@dataclass
class Observations:
    """Working arrays of the reflections refinement uses, sorted by experiment then panel.

    rows: indices into the user's reflection table; xyz_obs: (X mm, Y mm, phi rad);
    weights: (n, 3) 1/variance; active: False for rows currently rejected as outliers;
    frame: the scan frame at which scan-varying models are composed for each row (set by the
    orchestration from `compose_model_per`; NaN until then); removed: True for rows that
    auto-reduction (action=remove) took out of refinement for good: they stay inactive whatever
    outlier detection decides.
    """

    rows: np.ndarray
    experiment: np.ndarray
    panel: np.ndarray
    miller: np.ndarray
    entering: np.ndarray
    xyz_obs: np.ndarray
    weights: np.ndarray
    active: np.ndarray
    frame: Optional[np.ndarray] = None
    removed: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.removed is None:
            self.removed = np.zeros(len(self.rows), dtype=bool)

    @classmethod
    def build(cls, rows, experiment, panel, miller, entering, xyz_obs, weights) -> "Observations":
        order = np.lexsort((xyz_obs[:, 2], panel, experiment))
        return cls(
            rows=np.asarray(rows)[order],
            experiment=np.asarray(experiment, dtype=np.int64)[order],
            panel=np.asarray(panel, dtype=np.int64)[order],
            miller=np.ascontiguousarray(miller[order], dtype=float),
            entering=np.asarray(entering, dtype=bool)[order],
            xyz_obs=np.ascontiguousarray(xyz_obs[order], dtype=float),
            weights=np.ascontiguousarray(weights[order], dtype=float),
            active=np.ones(len(order), dtype=bool),
            frame=np.full(len(order), np.nan),
        )

    def __len__(self) -> int:
        return len(self.rows)


    def blocks(self, chunk_size: int, window_frames: Optional[dict] = None) -> list:
        """(experiment, panel, start, stop) for contiguous runs, split every chunk_size rows and,
        for experiments in `window_frames` ({experiment: width}), where the composition frame
        crosses a multiple of the width."""
        n = len(self)
        if n == 0:
            return []
        key = self.experiment * (int(self.panel.max()) + 1) + self.panel
        if window_frames:
            win = np.zeros(n, dtype=np.int64)
            for e, width in window_frames.items():
                sel = self.experiment == e
                win[sel] = np.floor(self.frame[sel] / width).astype(np.int64)
            key = key * (int(win.max()) - int(win.min()) + 1) + (win - int(win.min()))
        edges = np.flatnonzero(np.diff(key)) + 1
        starts = np.concatenate([[0], edges])
        stops = np.concatenate([edges, [n]])
        out = []
        for a, b in zip(starts, stops):
            for c in range(a, b, chunk_size):
                out.append((int(self.experiment[a]), int(self.panel[a]), int(c), int(min(c + chunk_size, b))))
        return out


@dataclass
class Evaluation:
    """The problem evaluated at x.

    chi2 = sum w r^2 over used rows; normal = JᵀWJ (n × n) and gradient = JᵀWr when derivatives
    were asked for; xyz_calc / s1 / valid per sorted row; `used` = valid & active.
    """

    x: np.ndarray
    chi2: float
    n_reflections: int
    n_equations: int
    rmsd: np.ndarray
    xyz_calc: np.ndarray
    s1: np.ndarray
    valid: np.ndarray
    used: np.ndarray
    normal: Optional[np.ndarray] = None
    gradient: Optional[np.ndarray] = None

    @property
    def objective(self) -> float:
        return 0.5 * self.chi2

    @property
    def dof(self) -> int:
        return self.n_equations - len(self.x)


class RefinementProblem:
    """The least-squares problem engines minimise.

    parameterisations: in global order; their free parameters form the *full* vector.
    predictors: one per experiment.
    restraints: extra rows (xrefine.restraints.Restraint).
    constraints: groups of (parameterisation, Parameter) pairs that move by one common shift; the engines'
    vector x is then the *reduced* vector (unconstrained columns, then one common value per
    group, the mean of its members).  Without constraints the two vectors are the same.
    """

    def __init__(
        self,
        experiments: ExperimentList,
        observations: Observations,
        parameterisations: Sequence[Parameterisation],
        predictors: Sequence[Predictor],
        chunk_size: int = 65536,
        restraints: Sequence[Restraint] = (),
        constraints: Sequence = (),
    ):
        self.experiments = experiments
        self.obs = observations
        self.parameterisations = list(parameterisations)
        self.predictors = list(predictors)
        self.chunk_size = int(chunk_size)
        self.restraints = list(restraints)
        self._constraint_params = [list(g) for g in constraints]  # [(parameterisation, free index), ...]
        self._layout()

    # ------------------------------------------------------------------ parameter vector
    def _layout(self) -> None:
        sizes = [p.num_free for p in self.parameterisations]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_full = int(self.offsets[-1])
        self._build_reduction()
        # which parameterisations touch each experiment
        self._exp_params = [
            [i for i, p in enumerate(self.parameterisations) if e in p.experiment_ids and p.num_free > 0]
            for e in range(len(self.experiments))
        ]
        self._sv_params = [[i for i in ps if self.parameterisations[i].scan_varying] for ps in self._exp_params]
        windows = {}
        for e, ps in enumerate(self._exp_params):
            widths = [self.parameterisations[i].window_frames for i in ps if self.parameterisations[i].scan_varying]
            if widths:
                windows[e] = min(widths)
        if windows and np.isnan(self.obs.frame[np.isin(self.obs.experiment, list(windows))]).any():
            raise ValueError("scan-varying parameterisations need Observations.frame")
        self._blocks = self.obs.blocks(self.chunk_size, windows)

    def refresh(self) -> None:
        """Call after fixing or removing parameters, or changing the observations."""
        self._layout()

    def _build_reduction(self) -> None:
        """The 0/1 matrix T (full x reduced) of the equal-shift constraints, or None."""
        groups = []
        for members in self._constraint_params:
            cols = []
            for p, q in members:
                if p in self.parameterisations and not q.fixed:
                    i = self.parameterisations.index(p)
                    cols.append(int(self.offsets[i]) + p.free_parameters.index(q))
            if len(cols) > 1:
                groups.append(sorted(cols))
        self._groups = groups
        if not groups:
            self.T = None
            self.n_params = self.n_full
            return
        grouped = {c for g in groups for c in g}
        free_cols = [c for c in range(self.n_full) if c not in grouped]
        T = np.zeros((self.n_full, len(free_cols) + len(groups)))
        T[free_cols, np.arange(len(free_cols))] = 1.0
        for k, g in enumerate(groups):
            T[g, len(free_cols) + k] = 1.0
        self.T = T
        self._free_cols = np.array(free_cols, dtype=int)
        self.n_params = T.shape[1]
        full = self.get_full_x()
        self._offset_in_group = {c: full[c] - np.mean(full[g]) for g in groups for c in g}

    @property
    def parameter_names(self) -> list:
        full = [f"{p.name}{q.name}" for p in self.parameterisations for q in p.free_parameters]
        if self.T is None:
            return full
        return [full[c] for c in self._free_cols] + ["=".join(full[c] for c in g) for g in self._groups]

    def get_full_x(self) -> np.ndarray:
        if not self.parameterisations:
            return np.zeros(0)
        return np.concatenate([p.get_free_values() for p in self.parameterisations])

    def get_x(self) -> np.ndarray:
        full = self.get_full_x()
        if self.T is None:
            return full
        return np.concatenate([full[self._free_cols], [np.mean(full[g]) for g in self._groups]])

    def set_x(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=float)
        if self.T is not None:
            full = np.empty(self.n_full)
            full[self._free_cols] = x[: len(self._free_cols)]
            for k, g in enumerate(self._groups):
                for c in g:
                    full[c] = x[len(self._free_cols) + k] + self._offset_in_group[c]
            x = full
        for p, a, b in zip(self.parameterisations, self.offsets[:-1], self.offsets[1:]):
            if b > a:
                p.set_free_values(x[a:b])

    # ------------------------------------------------------------------ evaluation
    _STATE_FIELD = {"beam.s0": "s0", "crystal.U": "U", "crystal.B": "B", "goniometer.S": "S", "detector.d": "d"}

    def _block_derivatives(self, e: int, panel: int, a: int, b: int, cache: dict):
        sds, cols = [], []
        frames = self.obs.frame[a:b]
        for i in self._exp_params[e]:
            p = self.parameterisations[i]
            if p.scan_varying:
                pc = p.columns_between(float(frames.min()), float(frames.max()), panel)
                if len(pc) == 0:
                    continue
                sds.append(StateDerivative(p.kind, p.derivatives_at(frames, pc, panel)))
                cols.append(self.offsets[i] + pc)
                continue
            d = cache[i]
            if p.kind == "detector.d":
                pc = p.panel_columns(panel)
                if len(pc) == 0:
                    continue
                sds.append(StateDerivative(p.kind, d[pc, panel]))
                cols.append(self.offsets[i] + pc)
            else:
                sds.append(StateDerivative(p.kind, d))
                cols.append(self.offsets[i] + np.arange(p.num_free))
        return sds, (np.concatenate(cols) if cols else np.zeros(0, dtype=int))

    def block_columns(self, block) -> np.ndarray:
        """Global indices of the columns the reflections of a block depend on."""
        e, panel, a, b = block
        cols = []
        for i in self._exp_params[e]:
            p = self.parameterisations[i]
            if p.scan_varying:
                f = self.obs.frame[a:b]
                c = p.columns_between(float(f.min()), float(f.max()), panel)
            else:
                c = p.panel_columns(panel) if p.kind == "detector.d" else np.arange(p.num_free)
            cols.append(self.offsets[i] + np.asarray(c, dtype=int))
        return np.concatenate(cols) if cols else np.zeros(0, dtype=int)

    def _block_state(self, e: int, panel: int, a: int, b: int, base: ExperimentState) -> ExperimentState:
        st = ExperimentState(**vars(base))
        st.d = self.experiments[e].detector[panel].d
        for i in self._sv_params[e]:
            p = self.parameterisations[i]
            setattr(st, self._STATE_FIELD[p.kind], p.states_at(self.obs.frame[a:b], panel))
        return st

    def _sweep(self, x, derivatives: bool, visit=None):
        """Predict every block at x; yields per-block arrays to `visit`."""
        self.set_x(x)
        o = self.obs
        cache = {}
        if derivatives:
            for e_params in self._exp_params:
                for i in e_params:
                    if i not in cache and not self.parameterisations[i].scan_varying:
                        cache[i] = self.parameterisations[i].state_derivatives()
        for i, p in enumerate(self.parameterisations):
            if p.scan_varying:
                p.prepare(np.unique(o.frame[np.isin(o.experiment, p.experiment_ids)]))
        states = {e: ExperimentState.from_experiment(expt, 0) for e, expt in enumerate(self.experiments)}
        n = len(o)
        xyz = np.full((n, 3), np.nan)
        s1 = np.full((n, 3), np.nan)
        valid = np.zeros(n, dtype=bool)
        for e, panel, a, b in self._blocks:
            st = self._block_state(e, panel, a, b, states[e])
            sds, cols = self._block_derivatives(e, panel, a, b, cache) if derivatives else ([], None)
            pred = self.predictors[e].predict(st, o.miller[a:b], o.entering[a:b], o.xyz_obs[a:b, 2], sds)
            xyz[a:b] = pred.xyz
            s1[a:b] = pred.s1
            valid[a:b] = pred.valid
            if visit is not None:
                visit(a, b, pred, cols)
        return xyz, s1, valid

    def evaluate(self, x: np.ndarray, derivatives: bool = True) -> Evaluation:
        """Residuals, chi2, RMSDs and (with derivatives) the normal equations at x."""
        o = self.obs
        n = self.n_full
        normal = np.zeros((n, n)) if derivatives else None
        gradient = np.zeros(n) if derivatives else None

        def visit(a, b, pred, cols):
            if not derivatives or len(cols) == 0:
                return
            use = pred.valid & o.active[a:b]
            if not use.any():
                return
            # weights of unused rows are zero; their (possibly NaN) derivatives are zeroed first.
            # Work on the (3, K, n) view: each residual dimension is then a contiguous (K x n)
            # slab and its contribution to JᵀWJ one BLAS product (the rotation predictor
            # returns exactly this layout, so no copy is made).
            Jt = np.transpose(pred.jacobian, (1, 2, 0))
            if not pred.valid.all():
                Jt[..., ~pred.valid] = 0.0
            swt = (np.sqrt(o.weights[a:b]) * use[:, None]).T
            Jt *= swt[:, None, :]
            rt = np.where(use[:, None], pred.xyz - o.xyz_obs[a:b], 0.0).T * swt
            idx = np.ix_(cols, cols)
            for d in range(3):
                normal[idx] += Jt[d] @ Jt[d].T
                gradient[cols] += Jt[d] @ rt[d]

        xyz, s1, valid = self._sweep(x, derivatives, visit)
        used = valid & o.active
        r = xyz[used] - o.xyz_obs[used]
        w = o.weights[used]
        chi2 = float(np.sum(w * r * r))
        n_eq = int(np.count_nonzero(w))
        for rr in self._restraint_rows():
            chi2 += float(np.sum(rr.weights * rr.residuals**2))
            n_eq += int(np.count_nonzero(rr.weights))
            if derivatives:
                Jw = rr.jacobian * rr.weights[:, None]
                normal[np.ix_(rr.columns, rr.columns)] += Jw.T @ rr.jacobian
                gradient[rr.columns] += Jw.T @ rr.residuals
        if derivatives and self.T is not None:
            normal = self.T.T @ normal @ self.T
            gradient = self.T.T @ gradient
        nref = int(used.sum())
        rmsd = np.sqrt(np.mean(r * r, axis=0)) if nref else np.full(3, np.nan)
        return Evaluation(
            x=np.array(x, dtype=float),
            chi2=chi2,
            n_reflections=nref,
            n_equations=n_eq,
            rmsd=rmsd,
            xyz_calc=xyz,
            s1=s1,
            valid=valid,
            used=used,
            normal=normal,
            gradient=gradient,
        )

    def _restraint_rows(self) -> list:
        return [r.rows(self) for r in self.restraints]

    # ------------------------------------------------------------------ row form (scipy)
    def residual_vector(self, x: np.ndarray) -> np.ndarray:
        """Weighted residuals sqrt(w)·(calc − obs) of every active row (3 per row, X then Y then
        phi per reflection), then the restraint rows; rows without a prediction contribute
        zeros so the length is fixed."""
        o = self.obs
        xyz, _, valid = self._sweep(x, derivatives=False)
        use = valid & o.active
        r = np.where(use[:, None], (xyz - o.xyz_obs) * np.sqrt(o.weights), 0.0)
        parts = [r[o.active].reshape(-1)]
        parts += [rr.residuals * np.sqrt(rr.weights) for rr in self._restraint_rows()]
        return np.concatenate(parts)

    def jacobian(self, x: np.ndarray) -> sp.csr_matrix:
        """d residual_vector / dx as a sparse matrix (only each block's own columns stored)."""
        o = self.obs
        row_of = np.cumsum(o.active) - 1  # row index among active reflections
        rows_l, cols_l, vals_l = [], [], []

        def visit(a, b, pred, cols):
            if len(cols) == 0:
                return
            use = pred.valid & o.active[a:b]
            if not use.any():
                return
            sw = np.sqrt(o.weights[a:b][use])
            J = pred.jacobian[use] * sw[:, :, None]  # (m, 3, k)
            base = 3 * row_of[a:b][use]
            r = (base[:, None] + np.arange(3)[None, :])[:, :, None]
            rows_l.append(np.broadcast_to(r, J.shape).reshape(-1))
            cols_l.append(np.broadcast_to(cols[None, None, :], J.shape).reshape(-1))
            vals_l.append(J.reshape(-1))

        self._sweep(x, True, visit)
        m = 3 * int(o.active.sum())
        for rr in self._restraint_rows():
            k = len(rr.residuals)
            J = rr.jacobian * np.sqrt(rr.weights)[:, None]
            rows_l.append(np.repeat(m + np.arange(k), len(rr.columns)))
            cols_l.append(np.tile(rr.columns, k))
            vals_l.append(J.reshape(-1))
            m += k
        if not rows_l:
            J = sp.csr_matrix((m, self.n_full))
        else:
            J = sp.csr_matrix(
                (np.concatenate(vals_l), (np.concatenate(rows_l), np.concatenate(cols_l))), shape=(m, self.n_full)
            )
        return J if self.T is None else (J @ sp.csr_matrix(self.T)).tocsr()

    # ------------------------------------------------------------------ statistics
    def covariance(self, ev: Evaluation) -> Optional[np.ndarray]:
        """s² N⁻¹ from the undamped normal matrix at the solution (None if singular), in the
        full parameter vector (constrained members share their group's variance)."""
        if ev.normal is None or ev.dof < 1:
            return None
        s2 = ev.chi2 / ev.dof
        try:
            c = np.linalg.cholesky(ev.normal)
            ci = np.linalg.inv(c)
            V = s2 * (ci.T @ ci)
        except np.linalg.LinAlgError:
            return None
        return V if self.T is None else self.T @ V @ self.T.T

    @property
    def blocks(self) -> list:
        """(experiment, panel, start, stop) of every block of observation rows."""
        return list(self._blocks)

    def columns_reflection_counts(self) -> np.ndarray:
        """Number of active reflections whose Jacobian row includes each column."""
        counts = np.zeros(self.n_full, dtype=np.int64)
        o = self.obs
        for block in self._blocks:
            counts[self.block_columns(block)] += int(o.active[block[2]:block[3]].sum())
        return counts

    @property
    def constraint_groups(self) -> list:
        """Full-vector columns of each equal-shift constraint group (sorted arrays)."""
        return [np.array(g, dtype=int) for g in self._groups]
