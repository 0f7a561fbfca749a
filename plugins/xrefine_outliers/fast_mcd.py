"""The FAST-MCD search (Rousseeuw & Van Driessen 1999) for the h rows of smallest covariance
determinant, as laid out in MATH.md §8.1.

Random (p+1)-row starts are concentrated by C-steps (keep the h rows nearest in Mahalanobis
distance to the current mean and covariance, recompute both); the determinant never increases,
so the best few of many short runs are iterated to convergence.  From 600 rows on, the starts
are run inside disjoint groups of about 300 rows, and the best of them on the merged groups,
before the last C-steps on all rows.

Every candidate of a stage advances together.  Moments and distances come from one per-row
table of monomials (x_i x_j for i <= j, x_i, 1): the sums over any subsets are a selection
matrix times that table, and the squared distances of all rows to all candidates are the
candidates' quadratic-form coefficients times it, so a C-step for hundreds of candidates is two
matrix products and one `argpartition`.

The search is affine equivariant.  Its few tolerances are relative to the spread of the data, but
the caller should pass robustly standardised rows (as `xrefine_outliers.mcd` does) so that the
expanded quadratic forms keep their precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SearchResult", "fast_mcd", "hyperplane_fit", "is_singular"]

GROUP_SIZE = 300
MAX_GROUPS = 5
N_BEST = 10
START_CSTEPS = 2  # after the first C-step from a (p+1)-row start, as in R&vD
MERGED_CSTEPS = 2
MAX_CSTEPS = 100
# Above this many rows only the single best merged candidate is iterated on all rows.
MANY_ROWS = 5000

# A scatter whose smallest eigenvalue is below this fraction of its largest is singular: its
# h rows lie on a hyperplane up to rounding (a standard deviation ratio of 1e-5).
SINGULAR_RATIO = 1e-10
# A row lies on such a hyperplane when its distance to it is below this fraction of the largest
# in-plane standard deviation (100 times the largest off-plane spread of a singular scatter),
# plus an absolute floor for the case that all h rows coincide.
PLANE_TOLERANCE = 1e-3
PLANE_FLOOR = 1e-12
MAX_PROPOSALS = 10


@dataclass(frozen=True)
class SearchResult:
    """Outcome of `fast_mcd`.

    support: bool (n,), the h rows of the best subset found; or, for an exact fit, every row
        lying on the hyperplane.
    exact_fit: at least h rows lie on a hyperplane (the MCD determinant is zero).  Then `origin`
        (p,) is a point of the plane and `basis` (p, r) an orthonormal basis of its directions
        (r < p, possibly 0); both are None otherwise.
    """

    support: np.ndarray
    exact_fit: bool
    origin: np.ndarray | None = None
    basis: np.ndarray | None = None


class _Rows:
    """The rows of one stage as the monomial table shared by moments and distances."""

    def __init__(self, x: np.ndarray):
        self.count, self.p = x.shape
        upper_i, upper_j = np.triu_indices(self.p)
        self.monomials = np.concatenate(
            [x[:, upper_i] * x[:, upper_j], x, np.ones((self.count, 1))], axis=1
        )
        self.monomials_t = np.ascontiguousarray(self.monomials.T)


def _mean_and_scatter(sums: np.ndarray, count: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of subsets from their (K, n_monomials) sums."""
    upper_i, upper_j = np.triu_indices(p)
    n_quad = upper_i.size
    mean = sums[:, n_quad : n_quad + p] / count
    second = np.empty((sums.shape[0], p, p))
    second[:, upper_i, upper_j] = sums[:, :n_quad] / count
    second[:, upper_j, upper_i] = second[:, upper_i, upper_j]
    scatter = (second - mean[:, :, None] * mean[:, None, :]) * (count / (count - 1))
    return mean, scatter


def _squared_distances(rows: _Rows, mean: np.ndarray, scatter: np.ndarray) -> np.ndarray:
    """(K, m) squared Mahalanobis distances of the stage's rows to K candidates."""
    p = rows.p
    upper_i, upper_j = np.triu_indices(p)
    precision = np.linalg.inv(scatter)
    weighted_mean = np.einsum("kij,kj->ki", precision, mean)
    coefficients = np.concatenate(
        [
            precision[:, upper_i, upper_j] * np.where(upper_i == upper_j, 1.0, 2.0),
            -2.0 * weighted_mean,
            np.einsum("ki,ki->k", mean, weighted_mean)[:, None],
        ],
        axis=1,
    )
    return coefficients @ rows.monomials_t


def _determinants(scatter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Determinants and a singular flag per scatter matrix.

    The eigenvalue test runs only where the determinant allows a small eigenvalue: with
    lambda_min <= r * lambda_max, det <= r * lambda_max**p <= r * trace**p."""
    p = scatter.shape[-1]
    det = np.linalg.det(scatter)
    trace = np.trace(scatter, axis1=1, axis2=2)
    singular = ~(det > SINGULAR_RATIO * trace**p)
    if singular.any():
        eigenvalues = np.linalg.eigvalsh(scatter[singular])
        singular[singular] = eigenvalues[:, 0] <= SINGULAR_RATIO * eigenvalues[:, -1]
    return det, singular


class _Search:
    """State shared by the stages of one search: the random streams and the exact-fit proposals."""

    def __init__(self, seed: int):
        start_seeds, extra_seeds = np.random.SeedSequence(seed).spawn(2)
        self.rng = np.random.default_rng(start_seeds)
        # Growing singular starts draws from its own stream, so that which starts happen to be
        # singular never shifts the random subsets of the others.
        self.rng_extra = np.random.default_rng(extra_seeds)
        self.proposals: list[tuple[np.ndarray, np.ndarray]] = []

    def propose(self, mean: np.ndarray, scatter: np.ndarray) -> None:
        room = MAX_PROPOSALS - len(self.proposals)
        self.proposals.extend(zip(mean[:room], scatter[:room]))

    def starts(self, rows: _Rows, n_starts: int, h: int):
        """Means, scatters and determinants of random (p+1)-row subsets, each grown (doubling)
        until its scatter is non-singular; subsets still singular at h rows are proposals."""
        p = rows.p
        index = self.rng.integers(0, rows.count, size=(n_starts, p + 1))
        mean, scatter = _mean_and_scatter(rows.monomials[index].sum(axis=1), p + 1, p)
        det, singular = _determinants(scatter)
        bad = np.flatnonzero(singular)
        grown = index[bad]
        while bad.size and grown.shape[1] < h:
            extra = min(grown.shape[1], h - grown.shape[1])
            grown = np.concatenate([grown, self.rng_extra.integers(0, rows.count, (bad.size, extra))], axis=1)
            sums = rows.monomials[grown].sum(axis=1)
            mean[bad], scatter[bad] = _mean_and_scatter(sums, grown.shape[1], p)
            det[bad], still = _determinants(scatter[bad])
            bad, grown = bad[still], grown[still]
        if bad.size:
            self.propose(mean[bad], scatter[bad])
        good = np.ones(n_starts, dtype=bool)
        good[bad] = False
        return mean[good], scatter[good], det[good]

    def concentrate(self, rows: _Rows, mean, scatter, det, h: int, max_steps: int,
                    until_converged: bool):
        """Up to `max_steps` C-steps for every candidate.  With `until_converged`, a candidate
        stops once its determinant no longer decreases.  Candidates whose h rows fall on a
        hyperplane become proposals and are dropped."""
        mean, scatter = mean.copy(), scatter.copy()
        # The incoming determinants may belong to another stage's rows and h: never compare.
        det = np.full(det.size, np.inf)
        dropped = np.zeros(det.size, dtype=bool)
        active = np.arange(det.size)
        for _ in range(max_steps):
            if active.size == 0:
                break
            d2 = _squared_distances(rows, mean[active], scatter[active])
            nearest = np.argpartition(d2, h - 1, axis=1)[:, :h]
            selection = np.zeros_like(d2)
            np.put_along_axis(selection, nearest, 1.0, axis=1)
            new_mean, new_scatter = _mean_and_scatter(selection @ rows.monomials, h, rows.p)
            new_det, singular = _determinants(new_scatter)
            if singular.any():
                self.propose(new_mean[singular], new_scatter[singular])
                dropped[active[singular]] = True
            improved = ~singular & ~(until_converged & (new_det >= det[active]))
            moved = active[improved]
            mean[moved], scatter[moved] = new_mean[improved], new_scatter[improved]
            det[moved] = new_det[improved]
            active = moved if until_converged else active[~singular]
        keep = ~dropped
        return mean[keep], scatter[keep], det[keep]

    def exact_fit(self, x: np.ndarray, h: int) -> SearchResult | None:
        """The proposal hyperplane holding the most rows, if it holds at least h of them."""
        best = None
        for mean, scatter in self.proposals:
            fit = hyperplane_fit(x, mean, scatter)
            count = int(fit.support.sum())
            if count >= h and (best is None or count > best[0]):
                best = (count, fit)
        return None if best is None else best[1]


def is_singular(scatter: np.ndarray) -> bool:
    """Whether a covariance matrix counts as singular for the search (see SINGULAR_RATIO)."""
    return bool(_determinants(scatter[None])[1][0])


def hyperplane_fit(x: np.ndarray, mean: np.ndarray, scatter: np.ndarray) -> SearchResult:
    """The rows of `x` on the hyperplane through `mean` spanned by the non-null eigenvectors of
    the singular `scatter`, as an exact-fit `SearchResult`."""
    eigenvalues, vectors = np.linalg.eigh(scatter)
    largest = max(eigenvalues[-1], 0.0)
    normal = eigenvalues <= SINGULAR_RATIO * largest
    tolerance = PLANE_TOLERANCE * np.sqrt(largest) + PLANE_FLOOR
    on_plane = np.all(np.abs((x - mean) @ vectors[:, normal]) <= tolerance, axis=1)
    return SearchResult(on_plane, True, mean, vectors[:, ~normal])


def _final_steps(n: int, p: int) -> int:
    """R&vD's cap on the C-steps on all rows: to convergence up to n*p = 1e5, then one fewer per
    further 1e5 from 10 down to 1."""
    size = n * p
    if size <= 100_000:
        return MAX_CSTEPS
    return max(1, 12 - math.ceil(size / 100_000))


def _best(det: np.ndarray, count: int) -> np.ndarray:
    return np.argsort(det, kind="stable")[:count]


def fast_mcd(x: np.ndarray, h: int, seed: int, n_starts: int = 500) -> SearchResult | None:
    """Approximate the h-subset of `x` (n, p) with the smallest covariance determinant.

    Requires p >= 1, p + 1 <= h <= n and finite values.  Deterministic for a given `seed`.
    With h = n the answer is all rows, without a search.  The caller should check the scatter of
    a non-exact support with `is_singular`: the search tests singularity on moments about the
    origin, which lose precision for a tight subset far from it.  Returns None only if every
    candidate degenerated onto a hyperplane holding fewer than h rows.
    """
    n, p = x.shape
    search = _Search(seed)
    if h >= n:
        return SearchResult(np.ones(n, dtype=bool), False)

    if n < 2 * GROUP_SIZE:
        rows = _Rows(x)
        candidates = search.starts(rows, n_starts, h)
        candidates = search.concentrate(rows, *candidates, h, 1 + START_CSTEPS, False)
        best = _best(candidates[2], N_BEST)
        candidates = search.concentrate(rows, *(c[best] for c in candidates), h, MAX_CSTEPS, True)
    else:
        n_groups = n // GROUP_SIZE
        if n_groups < MAX_GROUPS:
            sample = search.rng.permutation(n)
        else:
            n_groups = MAX_GROUPS
            sample = search.rng.choice(n, MAX_GROUPS * GROUP_SIZE, replace=False)
        pooled = []
        for group in np.array_split(sample, n_groups):
            rows = _Rows(x[group])
            h_group = max(p + 1, group.size * h // n)
            candidates = search.starts(rows, max(1, n_starts // n_groups), h_group)
            candidates = search.concentrate(rows, *candidates, h_group, 1 + START_CSTEPS, False)
            best = _best(candidates[2], N_BEST)
            pooled.append([c[best] for c in candidates])
        candidates = [np.concatenate(parts) for parts in zip(*pooled)]
        merged = _Rows(x[sample])
        h_merged = max(p + 1, sample.size * h // n)
        candidates = search.concentrate(merged, *candidates, h_merged, MERGED_CSTEPS, False)
        best = _best(candidates[2], 1 if n > MANY_ROWS else N_BEST)
        rows = _Rows(x)
        candidates = [c[best] for c in candidates]
        candidates = search.concentrate(rows, *candidates, h, _final_steps(n, p), True)

    exact = search.exact_fit(x, h)
    if exact is not None:
        return exact
    mean, scatter, det = candidates
    if det.size == 0:
        return None
    best = _best(det, 1)
    d2 = _squared_distances(rows, mean[best], scatter[best])[0]
    support = np.zeros(n, dtype=bool)
    support[np.argpartition(d2, h - 1)[:h]] = True
    return SearchResult(support, False)
