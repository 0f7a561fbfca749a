"""scipy.optimize.least_squares given xrefine's residuals and analytic sparse Jacobian: a peer
for comparisons, not the default."""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from xrefine.engine import Engine, EngineResult

from .gauss_newton import record


DENSE_LIMIT = 250_000_000


class ScipyLeastSquares(Engine):
    """Base for the scipy engines; `method` is 'trf' or 'lm'."""

    method = "trf"

    def run(self, problem, x0, convergence, on_step):
        ev0 = problem.evaluate(x0, derivatives=False)
        history = [record(0, ev0)]
        on_step(history[-1])

        # a dense Jacobian lets 'trf' use its exact trust-region solver, far faster than the
        # iterative LSMR solver scipy uses for sparse ones; past scipy.dense_limit elements it
        # stays sparse
        m = 3 * int(problem.obs.active.sum())
        limit = self.config["scipy.dense_limit"] if self.config is not None else DENSE_LIMIT
        if self.method == "lm" or m * problem.n_params <= limit:
            def jac(x):
                return problem.jacobian(x).toarray()
        else:
            jac = problem.jacobian

        def callback(intermediate_result):
            ev = problem.evaluate(intermediate_result.x, derivatives=False)
            history.append(record(len(history), ev))
            on_step(history[-1])

        kwargs = dict(method=self.method, x_scale=1.0)
        if convergence.max_iterations is not None:
            kwargs["max_nfev"] = max(1, convergence.max_iterations) * (1 if self.method == "trf" else 10)
        if self.method == "trf":
            kwargs["callback"] = callback
        res = least_squares(problem.residual_vector, np.asarray(x0, float), jac=jac, **kwargs)
        ev = problem.evaluate(res.x, derivatives=False)
        if self.method == "lm" or len(history) == 1 or not np.array_equal(history[-1].rmsd, ev.rmsd):
            history.append(record(len(history), ev))
            on_step(history[-1])
        problem.set_x(res.x)
        return EngineResult(res.x, history, f"scipy: {res.message}", bool(res.success), int(res.nfev),
                            {"evaluation": ev, "njev": int(res.njev or 0)})


class ScipyTRF(ScipyLeastSquares):
    name = "scipy-trf"
    method = "trf"


class ScipyLM(ScipyLeastSquares):
    name = "scipy-lm"
    method = "lm"
