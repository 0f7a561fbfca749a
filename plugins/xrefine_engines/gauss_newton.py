"""Gauss-Newton: solve N dx = -g by Cholesky and take the full step (MATH.md §7)."""

from __future__ import annotations

from xrefine.engine import Engine, EngineResult, StepRecord, gauss_newton_decrement


def record(step, ev, dx_norm=0.0, damping=None) -> StepRecord:
    return StepRecord(step, ev.n_reflections, ev.rmsd.copy(), ev.objective, dx_norm, damping)


class GaussNewton(Engine):
    """Full Gauss-Newton steps; stops (keeping the previous point) if the objective rises while
    the number of reflections does not."""

    name = "gn"

    def run(self, problem, x0, convergence, on_step):
        ev = problem.evaluate(x0)
        history = [record(0, ev)]
        on_step(history[-1])
        nev = 1
        while True:
            if ev.dof < 1:
                reason = "too few degrees of freedom"
                break
            dx, dec = gauss_newton_decrement(ev.normal, ev.gradient, ev.chi2, ev.dof)
            reason = convergence.check(history, dec, dx)
            if reason:
                break
            trial = problem.evaluate(ev.x + dx)
            nev += 1
            if trial.objective > ev.objective and trial.n_reflections <= ev.n_reflections:
                reason = "objective increased"
                break
            ev = trial
            history.append(record(len(history), ev, float((dx @ dx) ** 0.5)))
            on_step(history[-1])
        problem.set_x(ev.x)
        converged = reason not in ("objective increased", "too few degrees of freedom") and "maximum" not in reason
        return EngineResult(ev.x, history, reason, converged, nev, {"evaluation": ev})
