"""Equal-shift constraints (MATH.md 9.2) from the ``constraints`` option (hook
``xrefine_constraints``).

Each entry is ``PATTERN`` or ``PATTERN@IDS`` and makes one group: the free parameters whose
full name (parameterisation name + parameter name: ``Detector1Group3Dist``,
``Crystal2g_param_0``, ``Beam1Mu2``) ends with PATTERN, compared case-insensitively with shell
wildcards (``*``, ``?``, ``[...]``); with ``@IDS`` only the models used by those experiments
(0-based ids joined by ``+``, inclusive ranges ``a-b``: ``Dist@0-3+7``).  The group's members
then move by one common shift and keep their initial differences.
"""

from __future__ import annotations

import fnmatch
import re

from xrefine.errors import InputError
from xrefine.scan_varying import SLOT_OF_KIND

from .option_values import ids_of_word, option

__all__ = ["build_equal_shift", "parse_constraint"]

_KEY = "constraints"

_SAMPLE_SUFFIX = re.compile(r"_sample\d+$")


def parse_constraint(entry: str, n_experiments: int) -> tuple:
    """(lower-case pattern, set of experiment ids or None) of one ``constraints`` entry."""
    text = str(entry).strip()
    pattern, at, ids_text = text.partition("@")
    pattern = pattern.strip()
    if not pattern:
        raise InputError(
            f"{_KEY}: entry {text!r} has no parameter-name pattern; write e.g. Dist or Detector1Group*Dist@0+1"
        )
    ids = None
    if at:
        words = [w for w in ids_text.split("+") if w.strip()]
        if not words:
            raise InputError(f"{_KEY}: entry {text!r} has no experiment ids after '@'; write e.g. Dist@0+1 or Dist@0-3")
        ids = set()
        for w in words:
            ids.update(ids_of_word(w, f"{_KEY} entry {text!r}", n_experiments))
    return pattern.lower(), ids


def _matches(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), "*" + pattern)


def _will_vary(p, experiments, config) -> bool:
    """Whether the core will make p scan-varying later in this job (its rule: scan_varying is
    not false, p's `<slot>.force_static` is false and p moves a rotation scan), so that the
    user learns of a forbidden constraint before a static refinement that would be wasted."""
    if config.get("scan_varying", "false") == "false":
        return False
    slot = SLOT_OF_KIND.get(p.kind)
    if slot is None or config.get(f"{slot}.force_static", True):
        return False
    return any(not experiments[e].is_still for e in p.experiment_ids if 0 <= e < len(experiments))


def _scan_varying_error(entry, p, names, will_vary: bool) -> InputError:
    slot = SLOT_OF_KIND.get(p.kind, p.kind)
    when = "will vary along the scan in the scan-varying phase of this job" if will_vary else "varies along the scan"
    return InputError(
        f"{_KEY}: entry {entry!r} matches {', '.join(names)}, which {when}; equal-shift constraints apply only "
        f"to static parameters: set {slot}.force_static=true or scan_varying=false, or narrow the pattern"
    )


def build_equal_shift(parameterisations, experiments, config) -> list:
    """One group of (parameterisation, Parameter) pairs per ``constraints`` entry."""
    entries = [str(e) for e in (option(config, _KEY) or [])]
    groups = []
    owner: dict = {}
    for entry in entries:
        pattern, ids = parse_constraint(entry, len(experiments))
        members = []
        for p in parameterisations:
            if ids is not None and not ids.intersection(p.experiment_ids):
                continue
            if p.scan_varying:
                # samples are named <static name>_sample<i> (the smoother's convention); match either
                full = [p.name + q.name for q in p.free_parameters]
                statics = {_SAMPLE_SUFFIX.sub("", n) for n in full
                           if _matches(pattern, n) or _matches(pattern, _SAMPLE_SUFFIX.sub("", n))}
                if statics:
                    raise _scan_varying_error(entry, p, sorted(statics), False)
                continue
            matched = [q for q in p.free_parameters if _matches(pattern, p.name + q.name)]
            if matched and _will_vary(p, experiments, config):
                raise _scan_varying_error(entry, p, [p.name + q.name for q in matched], True)
            members.extend((p, q) for q in matched)
        if not members:
            examples = [p.name + p.free_parameters[0].name for p in parameterisations if p.num_free][:5]
            hint = f" (free parameters are named like {', '.join(examples)})" if examples else ""
            where = "" if ids is None else f" of experiments {', '.join(map(str, sorted(ids)))}"
            raise InputError(f"{_KEY}: entry {entry!r} matches no free parameter{where}{hint}")
        units = sorted({q.unit for _, q in members})
        if len(units) > 1:
            raise InputError(
                f"{_KEY}: entry {entry!r} matches parameters in different units ({', '.join(units)}: "
                f"{', '.join(p.name + q.name for p, q in members)}); a group must hold parameters of one kind"
            )
        for p, q in members:
            key = (id(p), id(q))
            if key in owner:
                raise InputError(f"{_KEY}: {p.name}{q.name} is matched by entries {owner[key]!r} and {entry!r}; "
                                 "a parameter can be in one group only")
            owner[key] = entry
        if len(members) > 1:
            groups.append(members)
    return groups
