"""Layered configuration: defaults <- TOML file <- ``key=value`` arguments.

The core and every plugin contribute `Option`s (hook ``xrefine_config_options``).  Values from
a TOML file may be nested tables (``[detector] hierarchy_level = 1``) or dotted keys; command-line
values are strings parsed by the option's type.  An unknown key is an error that suggests the
closest known keys.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import InputError

__all__ = ["Option", "Config", "core_options", "build_config"]

_NONE_WORDS = {"none", "auto", "null", ""}


@dataclass
class Option:
    """One configuration option.

    type: 'bool', 'int', 'float', 'str', 'choice' (one of `choices`) or 'list' (of words,
    comma- or space-separated on the command line).  `allow_none` accepts None/Auto.
    """

    key: str
    default: Any
    type: str
    help: str
    choices: Optional[Sequence[str]] = None
    allow_none: bool = False
    source: str = "xrefine"

    def parse(self, value: Any, origin: str) -> Any:
        """Convert a value from a file or the command line, or raise InputError."""
        if self.allow_none and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS)):
            return None
        try:
            if self.type == "bool":
                if isinstance(value, bool):
                    return value
                word = str(value).strip().lower()
                if word in ("true", "yes", "1", "on"):
                    return True
                if word in ("false", "no", "0", "off"):
                    return False
                raise ValueError
            if self.type == "int":
                if isinstance(value, bool):
                    raise ValueError
                return int(value)
            if self.type == "float":
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            if self.type == "list":
                if isinstance(value, (list, tuple)):
                    return [str(v) for v in value]
                return [w for w in str(value).replace(",", " ").split() if w]
            if self.type == "choice":
                word = str(value).strip()
                if self.choices is not None and word not in self.choices:
                    raise InputError(
                        f"{origin}: {self.key}={value!r} is not one of: {', '.join(self.choices)}"
                    )
                return word
            return str(value)
        except ValueError:
            raise InputError(f"{origin}: {self.key}={value!r} is not a valid {self.type}") from None


def core_options() -> list:
    """Options owned by the core (selection, target, convergence, outliers, output)."""
    O = Option
    return [
        O("engine", "lm", "str", "minimisation engine (see `xrefine plugins`)"),
        O("max_iterations", None, "int", "largest number of engine steps in each macrocycle (Auto: no limit; the scipy engines map it to their evaluation budget)", allow_none=True),
        O("rmsd_tolerance", None, "float", "also stop when every RMSD changes by less than this fraction in a step (DIALS: 1e-4; Auto: off)", allow_none=True),
        O("step_tolerance_esd", 0.01, "float", "stop when the Gauss-Newton step from the current point is below this many esds"),
        O("bin_size_fraction", 0.0, "float", "stop when RMSDs are below this fraction of a pixel / image (0: off)"),
        O("close_to_spindle_cutoff", 0.02, "float", "exclude reflections with |(s1 x s0).e| below this (1/Angstrom^2)"),
        O("scan_margin", 0.0, "float", "exclude reflections within this many degrees of the scan ends"),
        O("reflections_per_degree", None, "float", "working-subset size per degree (Auto: all, unless the scan exceeds one turn)", allow_none=True),
        O("minimum_sample_size", 1000, "int", "never subsample below this many reflections per experiment"),
        O("maximum_sample_size", None, "int", "cap on reflections per experiment (Auto: none)", allow_none=True),
        O("random_seed", 42, "int", "seed for subsampling and outlier searches"),
        O("auto_reduction.action", "fail", "choice", "what to do with a parameter group that has too few reflections: fail (stop with an error), fix (fix its parameters at their starting values), or remove (fix them and take the reflections that depend on them out of refinement, repeating while that starves other groups)", choices=("fail", "fix", "remove")),
        O("auto_reduction.min_nref_per_parameter", 5, "int", "reflections needed per free parameter of a group"),
        O("outlier.algorithm", "mcd", "str", "centroid outlier detector, or 'null' for none"),
        O("outlier.block_width", None, "float", "width in degrees of the phi blocks outlier detection runs on (Auto: as dials.refine, per experiment at least 18 and wide enough for about 50 reflections per block; 0: no split)", allow_none=True),
        O("outlier.minimum_number_of_reflections", 20, "int", "a detection job with fewer reflections is rejected whole"),
        O("outlier.separate_experiments", True, "bool", "detect outliers in each experiment separately (false: pool the experiments)"),
        O("outlier.separate_panels", False, "bool",
          "detect outliers in each panel separately (useful for multi-panel detectors whose panels are still misplaced)"),
        O("outlier.reject_again", True, "bool", "detect outliers again on the converged model, restoring wrongly rejected reflections, and refine again"),
        O("outlier.max_cycles", 2, "int", "largest number of detect-and-refine cycles (2: detect on the start model, refine, detect again on the converged model, refine)"),
        O("scan_varying", "auto", "choice", "auto: a scan-static refinement, then a scan-varying one for rotation scans; true: scan-varying only; false: static only", choices=("auto", "true", "false")),
        O("smoother", "gaussian", "str", "scan-varying smoother plugin"),
        O("compose_model_per", "block", "choice", "scan-varying models are composed per block of phi (block_width) or per image", choices=("block", "image")),
        O("block_width", 1.0, "float", "width in degrees of the phi blocks scan-varying models are composed for"),
        O("beam.force_static", True, "bool", "keep the beam static in scan-varying refinement"),
        O("crystal.orientation.force_static", False, "bool", "keep the crystal orientation static in scan-varying refinement"),
        O("crystal.unit_cell.force_static", False, "bool", "keep the unit cell static in scan-varying refinement"),
        O("detector.force_static", True, "bool", "keep the detector static in scan-varying refinement"),
        O("goniometer.force_static", True, "bool", "keep the goniometer setting static in scan-varying refinement"),
        O("split_independent_sets", True, "bool", "refine experiments that share no model with each other as separate problems"),
        O("chunk_size", 65536, "int", "reflections per chunk when accumulating the normal equations"),
        O("output.experiments", "refined.expt", "str", "refined experiment list"),
        O("output.reflections", "refined.refl", "str", "reflections with updated predictions and flags"),
        O("output.log", "xrefine.log", "str", "text log"),
        O("output.json", "xrefine.json", "str", "machine-readable summary"),
    ]


@dataclass
class Config:
    """Resolved option values (`values`) and the options that define them."""

    options: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            raise KeyError(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, origin: str = "argument") -> None:
        opt = self.options.get(key)
        if opt is None:
            close = difflib.get_close_matches(key, list(self.options), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; see `xrefine show-config`"
            raise InputError(f"{origin}: unknown option {key!r}{hint}")
        self.values[key] = opt.parse(value, origin)

    def changed(self) -> dict:
        """Options whose value differs from the default."""
        return {k: v for k, v in self.values.items() if v != self.options[k].default}


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def all_options() -> dict:
    """Every option of the core and the installed plugins, by key."""
    from .plugins import get_plugin_manager

    options = {o.key: o for o in core_options()}
    pm = get_plugin_manager()
    for impl in pm.hook.xrefine_config_options.get_hookimpls():
        for opt in impl.function() or []:
            if opt.key in options:
                raise InputError(f"plugin {impl.plugin_name!r} redefines option {opt.key!r}")
            opt.source = impl.plugin_name
            options[opt.key] = opt
    return options


def build_config(
    config_file: Optional[str] = None, arguments: Sequence[str] = (), overrides: Optional[dict] = None
) -> Config:
    """Defaults <- TOML `config_file` <- `arguments` ('key=value' strings) <- `overrides` (Python)."""
    options = all_options()
    cfg = Config(options=options, values={k: o.default for k, o in options.items()})
    if config_file is not None:
        path = Path(config_file)
        try:
            table = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{config_file}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{config_file}: not valid TOML ({exc})") from None
        for key, value in _flatten(table).items():
            cfg.set(key, value, origin=str(config_file))
    for arg in arguments:
        if "=" not in arg:
            raise InputError(f"argument {arg!r} is not of the form key=value")
        key, value = arg.split("=", 1)
        cfg.set(key.strip(), value.strip(), origin="command line")
    for key, value in (overrides or {}).items():
        cfg.set(key.replace("__", "."), value, origin="keyword argument")
    return cfg
