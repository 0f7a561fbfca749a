"""Experiments that share no model form independent refinement problems.

`independent_sets` finds the connected sets (experiments are connected when they share a beam,
detector, goniometer or crystal object); `subset` cuts the job down to one set (its models are
the same objects, so refining it moves the full list's models); `merge_results` puts the sets'
results back together with parameter names numbered over the whole job.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import scipy.linalg

from .models import ExperimentList
from .reflections import ReflectionTable

__all__ = ["independent_sets", "subset", "merge_results"]

_KINDS = ("beam", "detector", "goniometer", "crystal")
_NAME = re.compile(r"^(Beam|Detector|Goniometer|Crystal)(\d+)")


def independent_sets(experiments: ExperimentList) -> list:
    """Lists of experiment indices, connected through shared model objects."""
    parent = list(range(len(experiments)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict = {}
    for i, expt in enumerate(experiments):
        for kind in _KINDS:
            model = getattr(expt, kind)
            if model is None:
                continue
            j = owner.setdefault(id(model), i)
            parent[find(i)] = find(j)
    sets: dict = {}
    for i in range(len(experiments)):
        sets.setdefault(find(i), []).append(i)
    return list(sets.values())


def subset(experiments: ExperimentList, table: ReflectionTable, members: list) -> tuple:
    """(experiment list of `members`, their reflections with ids renumbered, table rows)."""
    sub = ExperimentList([experiments[i] for i in members], extra=experiments.extra)
    ids = np.asarray(table["id"]).astype(np.int64)
    rows = np.flatnonzero(np.isin(ids, members))
    out = table.select(rows)
    new_id = np.full(len(experiments), -1, dtype=np.int64)
    new_id[members] = np.arange(len(members))
    out["id"] = new_id[ids[rows]].astype(np.int32)
    out.identifiers = {int(new_id[k]): v for k, v in table.identifiers.items() if 0 <= int(k) < len(experiments) and new_id[k] >= 0}
    return sub, out, rows


def _renamer(experiments: ExperimentList, members: list):
    """Map a name numbered within a set ('Crystal2...') to the job's numbering."""
    sub = ExperimentList([experiments[i] for i in members])
    table = {}
    for kind in _KINDS:
        glob = {id(m): n for n, m in enumerate(experiments.unique(kind), start=1)}
        for n, m in enumerate(sub.unique(kind), start=1):
            table[(kind.capitalize(), n)] = glob[id(m)]

    def rename(name: str) -> str:
        m = _NAME.match(name)
        if not m:
            return name
        n = table.get((m.group(1), int(m.group(2))))
        return name if n is None else f"{m.group(1)}{n}{name[m.end():]}"

    return rename


def _renumber_message(text: str, rename, members: list) -> str:
    """A set's auto-reduction message with model names and experiment ids numbered over the job."""
    text = re.sub(r"\b(?:Beam|Detector|Goniometer|Crystal)\d+\w*", lambda m: rename(m.group(0)), text)
    return re.sub(r"\bexperiment (\d+)", lambda m: f"experiment {members[int(m.group(1))]}", text)


def _sum_dicts(dicts: list) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
            elif isinstance(v, list):
                out.setdefault(k, []).extend(v)
    return out


def merge_results(experiments: ExperimentList, table: ReflectionTable, parts: list, config):
    """One RefinementResult for the whole job from (members, rows, result) per set."""
    from .refine import RefinementResult

    out_table = copy.copy(table)
    out_table.columns = dict(table.columns)
    out_table.types = dict(table.types)
    n = table.nrows
    for col, width in (("xyzcal.mm", 3), ("xyzcal.px", 3), ("s1", 3)):
        base = np.array(table[col], dtype=float) if col in table else np.zeros((n, width))
        for _, rows, res in parts:
            base[rows] = res.reflections[col]
        out_table[col] = base
    flags = np.array(table["flags"], dtype=np.uint64) if "flags" in table else np.zeros(n, dtype=np.uint64)
    for _, rows, res in parts:
        flags[rows] = res.reflections["flags"]
    out_table["flags"] = flags

    parameters, rmsd_exp, rmsd_panel, panels, cells, history, reasons, covs = [], [], [], [], [], [], [], []
    reductions = []
    for k, (members, rows, res) in enumerate(parts):
        rename = _renamer(experiments, members)
        reductions += [_renumber_message(m, rename, members) for m in res.selection.get("auto_reduction", [])]
        parameters += [{**p, "name": rename(p["name"])} for p in res.parameters]
        rmsd_exp += [{**r, "experiment": members[r["experiment"]]} for r in res.rmsd_by_experiment]
        rmsd_panel += [{**r, "experiment": members[r["experiment"]], "detector": rename(r["detector"])}
                       for r in res.rmsd_by_panel]
        panels += [{**p, "detector": rename(p["detector"])} for p in res.panels]
        cells += [{**c, "crystal": rename(c["crystal"])} for c in res.cells]
        history += res.history
        reasons.append(f"set {k + 1}: {res.stop_reason}")
        n_free = sum(not p["fixed"] for p in res.parameters)
        covs.append(res.covariance if res.covariance is not None else np.full((n_free, n_free), np.nan))
    rmsd_exp.sort(key=lambda r: r["experiment"])
    return RefinementResult(
        experiments=experiments,
        reflections=out_table,
        parameters=parameters,
        history=history,
        stop_reason="; ".join(reasons),
        converged=all(res.converged for *_, res in parts),
        rmsd_by_experiment=rmsd_exp,
        engine=config["engine"],
        selection={**_sum_dicts([res.selection for *_, res in parts]), "auto_reduction": reductions,
                   "independent_sets": [m for m, *_ in parts]},
        outliers=_sum_dicts([res.outliers for *_, res in parts]),
        timings=_sum_dicts([res.timings for *_, res in parts]),
        covariance=scipy.linalg.block_diag(*covs) if covs else None,
        cells=cells,
        config=config,
        rmsd_by_panel=rmsd_panel,
        panels=panels,
        n_refined=sum(res.n_refined or 0 for *_, res in parts),
    )
