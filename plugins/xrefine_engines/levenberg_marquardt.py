"""Levenberg-Marquardt with Nielsen's damping update, as dials.refine's LevMar (MATH.md §7)."""

from __future__ import annotations

import numpy as np

from xrefine.engine import Engine, EngineResult, gauss_newton_decrement

from .gauss_newton import record


class LevenbergMarquardt(Engine):
    """Damped normal equations (N + mu I) h = -g.  mu starts at tau * max diag(N) and follows
    the gain ratio; a rejected trial multiplies mu by nu (doubling nu), up to nu = 8192.

    Unlike DIALS, the trial point is evaluated with derivatives: most trials are accepted, and
    then the normal equations at the new point are already built."""

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
        mu = self.tau * float(np.max(np.diag(ev.normal))) if ev.normal.size else 0.0
        nu = 2.0
        eye = np.eye(len(ev.x))
        while True:
            dx_gn, dec = gauss_newton_decrement(ev.normal, ev.gradient, ev.chi2, ev.dof)
            reason = convergence.check(history, dec, dx_gn)
            if reason:
                break
            try:
                h = np.linalg.solve(ev.normal + mu * eye, -ev.gradient)
            except np.linalg.LinAlgError:
                reason = "singular normal matrix"
                break
            expected = 0.5 * float(h @ (mu * h - ev.gradient))
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
        problem.set_x(ev.x)
        converged = reason.startswith(("parameter shifts", "RMSD", "objective flat", "maximum number of trial"))
        return EngineResult(ev.x, history, reason, converged, nev, {"evaluation": ev})
