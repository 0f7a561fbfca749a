"""Reading this plugin's option values: cell numbers, experiment ids and groups of them.

Every error is an InputError that names the option.
"""

from __future__ import annotations

import ast
from typing import Optional

import numpy as np

from xrefine.errors import InputError

__all__ = ["DEFAULTS", "option", "cell_numbers", "ids_of_word", "experiment_ids", "experiment_groups"]

#: option defaults, also used when a configuration lacks the options (one built before this
#: plugin was registered)
DEFAULTS = {
    "restraints.tie_to_target.values": [],
    "restraints.tie_to_target.sigmas": [],
    "restraints.tie_to_target.experiments": [],
    "restraints.tie_to_group.sigmas": [],
    "restraints.tie_to_group.target": "mean",
    "restraints.tie_to_group.experiments": "",
    "constraints": [],
}

_ALL = {"", "all"}


def option(config, key: str):
    try:
        return config[key]
    except KeyError:
        return DEFAULTS[key]


def cell_numbers(words, key: str, sigmas: bool) -> Optional[np.ndarray]:
    """Six numbers (a, b, c in Angstrom, alpha, beta, gamma in degrees), or None if empty.
    Sigmas must be >= 0; cell values need positive edges and angles strictly between 0 and 180."""
    words = [str(w) for w in (words or [])]
    if not words:
        return None
    values = []
    for w in words:
        try:
            values.append(float(w))
        except ValueError:
            raise InputError(f"{key}: {w!r} is not a number; give six numbers (a, b, c in Angstrom, "
                             "alpha, beta, gamma in degrees)") from None
    if len(values) != 6:
        raise InputError(f"{key}: expected six numbers (a, b, c in Angstrom, alpha, beta, gamma in degrees), "
                         f"got {len(values)}")
    v = np.array(values)
    if not np.all(np.isfinite(v)):
        raise InputError(f"{key}: every number must be finite, got {words}")
    if sigmas and np.any(v < 0):
        raise InputError(f"{key}: sigmas must be >= 0 (0 leaves that cell parameter unrestrained), got {words}")
    if not sigmas and (np.any(v[:3] <= 0) or np.any(v[3:] <= 0) or np.any(v[3:] >= 180)):
        raise InputError(f"{key}: a target cell needs positive edges and angles between 0 and 180 degrees, got {words}")
    return v


def ids_of_word(word: str, key: str, n_experiments: int) -> list:
    """One id ('3') or an inclusive range ('2-5')."""
    word = word.strip()
    try:
        if "-" in word:
            lo, hi = (int(w) for w in word.split("-", 1))
            if lo > hi:
                raise ValueError
            ids = list(range(lo, hi + 1))
        else:
            ids = [int(word)]
    except ValueError:
        raise InputError(f"{key}: {word!r} is not an experiment id (0-based) or a range such as 2-5") from None
    for i in ids:
        if not 0 <= i < n_experiments:
            raise InputError(f"{key}: experiment {i} does not exist; this job has {n_experiments} experiments "
                             f"(ids 0-{n_experiments - 1})")
    return ids


def experiment_ids(words, key: str, n_experiments: int) -> Optional[set]:
    """A set of experiment ids from words such as ['0', '2-5'], or None (all) if empty or 'all'."""
    words = [str(w) for w in (words or [])]
    if not words or (len(words) == 1 and words[0].strip().lower() in _ALL):
        return None
    out = set()
    for w in words:
        out.update(ids_of_word(w, key, n_experiments))
    return out


def experiment_groups(text, key: str, n_experiments: int) -> Optional[list]:
    """Groups of experiment ids, or None (all experiments, one group) if empty or 'all'.

    Text form: groups separated by ';', ids by commas or spaces, ranges allowed
    (``"0,1,2;3-5"``).  A list from TOML or Python (``[[0, 1, 2], [3, 4, 5]]``, or one flat list
    for a single group) arrives as its text and is read back as such."""
    text = "" if text is None else str(text).strip()
    if text.lower() in _ALL:
        return None
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise InputError(f"{key}: {text!r} is not a list of groups of experiment ids") from None
        if all(isinstance(v, (int, str)) for v in value):
            value = [value]
        if not all(isinstance(g, (list, tuple)) for g in value):
            raise InputError(f"{key}: {text!r} is not a list of groups of experiment ids")
        raw = [[str(w) for w in g] for g in value]
    else:
        raw = [g.replace(",", " ").split() for g in text.split(";")]
    groups = []
    for g in raw:
        ids = []
        for w in g:
            ids.extend(ids_of_word(w, key, n_experiments))
        if not ids:
            raise InputError(f"{key}: {text!r} has an empty group; separate groups with ';' and ids with ','")
        groups.append(sorted(set(ids)))
    seen = {}
    for k, g in enumerate(groups):
        for i in g:
            if i in seen:
                raise InputError(f"{key}: experiment {i} is in groups {seen[i] + 1} and {k + 1}; "
                                 "each experiment may be in one group")
            seen[i] = k
    return groups
