"""DIALS-style `fix` options: words standing for groups of parameters, or parameter names."""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Union

from xrefine.errors import InputError
from xrefine.parameters import Parameterisation

__all__ = ["apply_fix"]


def apply_fix(
    parameterisation: Parameterisation,
    fix: Optional[Union[str, Iterable]],
    words: Mapping[str, tuple],
    option: str,
) -> None:
    """Fix the parameters selected by `fix`.

    `fix` is None, one string, or an iterable of entries.  Each entry is ``"all"``, one of the
    `words` (mapping a DIALS fix word to the short names it fixes), a 0-based parameter index,
    or a parameter name, short or prefixed with the parameterisation's name (``Mu1`` or
    ``Beam1Mu1``); names match case-insensitively, first exactly and otherwise as a substring
    (so ``"Phi"`` fixes Phi1..Phi3, as DIALS's fix_list does).  `option` names the
    configuration key in error messages.
    """
    if fix is None:
        return
    entries = [fix] if isinstance(fix, (str, int)) else list(fix)
    names = [p.name for p in parameterisation.parameters]
    to_fix = set()
    for entry in entries:
        if isinstance(entry, int) or (isinstance(entry, str) and entry.strip().isdigit()):
            i = int(entry)
            if not 0 <= i < len(names):
                raise InputError(
                    f"{option}: index {i} is out of range for {parameterisation.name}, "
                    f"which has parameters {', '.join(names)}."
                )
            to_fix.add(names[i])
            continue
        word = str(entry).strip()
        if word.lower().startswith(parameterisation.name.lower()) and len(word) > len(parameterisation.name):
            word = word[len(parameterisation.name) :]  # a full name as reports print it, e.g. Beam1Mu1
        if word == "all":
            to_fix.update(names)
        elif word in words:
            to_fix.update(words[word])
        else:
            lower = word.lower()
            exact = [n for n in names if n.lower() == lower]
            matched = exact or [n for n in names if lower in n.lower()]
            if not matched:
                choices = ", ".join(["all", *words, *names])
                raise InputError(
                    f"{option}: {word!r} names no parameter of {parameterisation.name}; "
                    f"use one of {choices}."
                )
            to_fix.update(matched)
    parameterisation.fix(to_fix)
