"""Levenberg-Marquardt with Nielsen's damping update, as dials.refine's LevMar (MATH.md §7)."""

from __future__ import annotations

import numpy as np

from xrefine.engine import Engine, EngineResult, gauss_newton_decrement

from .gauss_newton import record


class LevenbergMarquardt(Engine):
    """Damped normal equations (N + mu D) h = -g, mu following the gain ratio (Nielsen); a
    rejected trial multiplies mu by nu (doubling nu), up to nu = 8192.

    D is diag(N) by default (Marquardt's scaling, option ``lm.damping=diagonal``; mu starts at
    tau): the damping then acts on every parameter in proportion to its own curvature, so a
    stiff parameter (the cell, the distance) does not hold back the soft ones.  With
    ``lm.damping=identity`` D = I and mu starts at tau * max diag(N), exactly as dials.refine.

    Unlike DIALS, the trial point is evaluated with derivatives: most trials are accepted, and
    then the normal equations at the new point are already built.  A later run of the same
    engine object (the next macrocycle of one refinement, after outliers were re-detected)
    starts from the damping the previous run ended with, since it starts near the minimum."""

    name = "lm"
    tau = 1e-3
    max_nu = 8192

    def run(self, problem, x0, convergence, on_step):
        ev = problem.evaluate(x0)
        history = [record(0, ev)]
        on_step(history[-1])
        nev = 1
        if ev.dof < 1:
            problem.set_x(ev.x)
            return EngineResult(ev.x, history, "too few degrees of freedom", False, nev, {"evaluation": ev})
        diagonal = self.config is None or self.config.get("lm.damping", "diagonal") == "diagonal"
        mu = getattr(self, "_last_mu", None)
        if mu is None:
            mu = self.tau if diagonal else self.tau * float(np.max(np.diag(ev.normal), initial=0.0))
        nu = 2.0
        while True:
            dx_gn, dec = gauss_newton_decrement(ev.normal, ev.gradient, ev.chi2, ev.dof)
            reason = convergence.check(history, dec, dx_gn)
            if reason:
                break
            d = np.diag(ev.normal).copy() if diagonal else np.ones(len(ev.x))
            if diagonal:
                d = np.maximum(d, 1e-12 * max(float(d.max(initial=0.0)), 1e-300))
            try:
                h = np.linalg.solve(ev.normal + mu * np.diag(d), -ev.gradient)
            except np.linalg.LinAlgError:
                reason = "singular normal matrix"
                break
            expected = 0.5 * float(h @ (mu * d * h - ev.gradient))
            if expected <= 0.0:
                reason = "objective flat"
                break
            trial = problem.evaluate(ev.x + h)
            nev += 1
            rho = (ev.objective - trial.objective) / expected if trial.n_reflections else -1.0
            if rho > 0:
                ev = trial
                mu *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                nu = 2.0
                history.append(record(len(history), ev, float(np.linalg.norm(h)), mu))
                on_step(history[-1])
            else:
                if nu >= self.max_nu:
                    reason = "maximum number of trial steps"
                    break
                mu *= nu
                nu *= 2.0
        self._last_mu = mu
        problem.set_x(ev.x)
        converged = reason.startswith(("parameter shifts", "RMSD", "objective flat", "maximum number of trial"))
        return EngineResult(ev.x, history, reason, converged, nev, {"evaluation": ev})
