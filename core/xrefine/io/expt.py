"""DIALS experiment lists (`.expt`, JSON) to and from `xrefine.models`.

The reader interprets what refinement needs and keeps every other key in the model's `extra`,
in file order; the writer puts the keys back in dxtbx's order (so a file dxtbx wrote comes back
byte for byte) with any key dxtbx does not know after them.  Experiments that name the same
model index share one model object; the writer numbers the distinct objects in order of first
use, as dxtbx does.  A model whose state changed writes its new state.

Keys that are references or lists xrefine does not interpret (`imageset`, `profile`,
`scaling_model`, `history`, unknown keys) are written back exactly as read.
"""

from __future__ import annotations

import copy
import json
import math
from typing import NoReturn, Optional

import numpy as np

from ..errors import InputError
from ..models import Beam, Crystal, Detector, DetectorGroup, Experiment, ExperimentList, Goniometer, Panel, Scan
from . import _read_input, atomic_write

__all__ = ["read_experiments", "write_experiments", "experiments_from_dict", "experiments_to_dict"]

MODEL_KINDS = ("beam", "detector", "goniometer", "scan", "crystal")
# References an experiment holds to lists xrefine keeps verbatim.
OPAQUE_KINDS = ("imageset", "profile", "scaling_model")

# dxtbx's key orders (its to_dict methods).  Keys not listed are written after these.
_LIST_ORDER = (
    "__id__", "experiment", "history", "imageset",
    "beam", "detector", "goniometer", "scan", "crystal", "profile", "scaling_model",
)  # fmt: skip
_EXPERIMENT_ORDER = (
    "__id__", "identifier", "beam", "detector", "goniometer", "scan", "crystal",
    "profile", "scaling_model", "imageset",
)  # fmt: skip
_BEAM_ORDER = (
    "__id__", "direction", "wavelength", "divergence", "sigma_divergence", "polarization_normal",
    "polarization_fraction", "flux", "transmission", "probe", "sample_to_source_distance",
    "wavelength_range", "s0_at_scan_points",
)  # fmt: skip
_GONIOMETER_ORDER = (
    "rotation_axis", "fixed_rotation", "setting_rotation",
    "axes", "angles", "names", "scan_axis", "setting_rotation_at_scan_points",
)  # fmt: skip
_SCAN_ORDER = ("image_range", "batch_offset", "properties", "valid_image_ranges")
_CRYSTAL_ORDER = (
    "__id__", "real_space_a", "real_space_b", "real_space_c", "space_group_hall_symbol",
    "identified_isoform", "A_at_scan_points", "B_covariance", "B_covariance_at_scan_points",
    "recalculated_unit_cell", "recalculated_cell_parameter_sd", "recalculated_cell_volume_sd",
    "mosaicity", "ML_half_mosaicity_deg", "ML_domain_size_ang",
)  # fmt: skip
_PANEL_ORDER = (
    "name", "type", "fast_axis", "slow_axis", "origin", "raw_image_offset", "image_size",
    "pixel_size", "trusted_range", "thickness", "material", "mu", "identifier", "mask", "gain",
    "pedestal", "px_mm_strategy", "projection_2d",
)  # fmt: skip
_GROUP_ORDER = _PANEL_ORDER[:-1] + ("children",)
_DETECTOR_ORDER = ("panels", "hierarchy")

_PARALLAX_STRATEGIES = ("ParallaxCorrectedPxMmStrategy", "OffsetParallaxCorrectedPxMmStrategy")

# scitbx's degree <-> radian conversions, which dxtbx uses when it stores scan angles in
# radians and writes them in degrees; regenerated angle columns follow the same arithmetic.
_PI_180 = math.pi / 180.0

_FIX = "correct the file or write it again with DIALS"


# ------------------------------------------------------------------------------- public API
def read_experiments(path) -> ExperimentList:
    """Read a DIALS experiment list (`.expt`) into models; raises InputError for a bad file."""
    name = str(path)
    buf = _read_input(path, "experiment list")
    if buf.startswith(b"\x93\xbbdials::af::reflection_table"):
        raise InputError(f"{name} is a DIALS reflection table, not an experiment list; give it as the reflections.")
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name} is not a text file, so not a DIALS experiment list; check the file name.") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "it may be truncated or hand-edited, so correct it or write it again with DIALS."
        ) from None
    return experiments_from_dict(d, source=name)


def write_experiments(experiments: ExperimentList, path) -> None:
    """Write an experiment list as a DIALS `.expt` file (JSON, indent 2, as dxtbx writes it).

    The file is replaced atomically: an interrupted write leaves the old file in place.
    """
    text = json.dumps(experiments_to_dict(experiments), indent=2)
    atomic_write(path, text.encode("ascii"))


def experiments_from_dict(d, source: str = "<dict>") -> ExperimentList:
    """Build an ExperimentList from the parsed JSON of a `.expt` file.

    `source` names the file in error messages.  Experiments naming the same model index share
    one model object.  Raises InputError for anything malformed.
    """
    src = _Source(source)
    if isinstance(d, list):
        src.fail(
            "holds a JSON list, not a DIALS experiment list (it may be an old datablock file); "
            "convert it with dials.import"
        )
    if not isinstance(d, dict):
        src.fail("is not a DIALS experiment list (its top level is not a JSON object); give an .expt file")
    if d.get("__id__") != "ExperimentList":
        found = _short(d.get("__id__"))
        src.fail(f'is not a DIALS experiment list (its __id__ is {found}, not "ExperimentList"); give an .expt file')
    if not isinstance(d.get("experiment"), list):
        src.fail(f'has no list of experiments under "experiment"; {_FIX}')

    readers = {
        "beam": _beam_from_dict,
        "detector": _detector_from_dict,
        "goniometer": _goniometer_from_dict,
        "scan": _scan_from_dict,
        "crystal": _crystal_from_dict,
    }
    models = {}
    for kind in MODEL_KINDS:
        entries = d.get(kind, [])
        if not isinstance(entries, list):
            src.fail(f"has a {kind!r} key that is not a list of {kind} models ({_short(entries)}); {_FIX}")
        models[kind] = [readers[kind](src, entry, f"{kind} {i}") for i, entry in enumerate(entries)]

    experiments = [_experiment_from_dict(src, e, i, models, d) for i, e in enumerate(d["experiment"])]
    extra = {k: v for k, v in d.items() if k not in ("__id__", "experiment") + MODEL_KINDS}
    return ExperimentList(experiments, extra=extra)


def experiments_to_dict(experiments: ExperimentList) -> dict:
    """The JSON-ready dictionary dxtbx would write for these experiments.

    Distinct model objects (by identity) are listed once, in order of first use.
    """
    writers = {
        "beam": _beam_to_dict,
        "detector": _detector_to_dict,
        "goniometer": _goniometer_to_dict,
        "scan": _scan_to_dict,
        "crystal": _crystal_to_dict,
    }
    unique = {kind: ExperimentList.unique(experiments, kind) for kind in MODEL_KINDS}
    index = {kind: {id(m): i for i, m in enumerate(ms)} for kind, ms in unique.items()}
    extra = getattr(experiments, "extra", {})

    known: dict = {"__id__": "ExperimentList", "experiment": [_experiment_to_dict(e, index) for e in experiments]}
    for kind in MODEL_KINDS:
        known[kind] = [writers[kind](m) for m in unique[kind]]
    for kind in OPAQUE_KINDS:
        if kind not in extra:
            known[kind] = []
    return _ordered(known, extra, _LIST_ORDER)


# ------------------------------------------------------------------------------ validation
class _Source:
    """The file being read, for error messages."""

    def __init__(self, name: str):
        self.name = name

    def fail(self, message: str) -> NoReturn:
        raise InputError(f"{self.name} {message}.")


def _short(value, limit: int = 40) -> str:
    text = json.dumps(value) if not isinstance(value, np.ndarray) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dict(src: _Source, value, where: str) -> dict:
    if not isinstance(value, dict):
        src.fail(f"has {where} that is not a JSON object ({_short(value)}); {_FIX}")
    return value


def _require(src: _Source, d: dict, key: str, where: str):
    if key not in d:
        src.fail(f"has {where} without the required key {key!r}; {_FIX}")
    return d[key]


def _array(src: _Source, value, shape: tuple, where: str, key: str) -> np.ndarray:
    """`value` as a float array of `shape` (-1: any length), or an InputError."""
    arr: Optional[np.ndarray]
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        arr = None
    if arr is not None and arr.size == 0 and shape[0] == -1 and len(shape) > 1:
        return np.zeros((0,) + shape[1:])
    ok = (
        arr is not None
        and arr.dtype.kind in "iuf"
        and arr.ndim == len(shape)
        and all(s == -1 or s == n for s, n in zip(shape, arr.shape, strict=True))
    )
    if not ok:
        src.fail(f"has {where} whose {key!r} is not {_describe(shape)} ({_short(value)}); {_FIX}")
    return arr.astype(float)


def _describe(shape: tuple) -> str:
    if len(shape) == 1:
        return "a list of numbers" if shape[0] == -1 else f"a list of {shape[0]} numbers"
    return f"a list of {shape[1]}-number lists"


def _nonzero(src: _Source, vector: np.ndarray, where: str, key: str) -> None:
    if not np.linalg.norm(vector) > 0:
        src.fail(f"has {where} whose {key!r} is a zero vector; {_FIX}")


def _number(src: _Source, value, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        src.fail(f"has {where} whose {key!r} is not a number ({_short(value)}); {_FIX}")
    return float(value)


def _integer(src: _Source, value, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        src.fail(f"has {where} whose {key!r} is not an integer ({_short(value)}); {_FIX}")
    return value


def _string(src: _Source, value, where: str, key: str) -> str:
    if not isinstance(value, str):
        src.fail(f"has {where} whose {key!r} is not a string ({_short(value)}); {_FIX}")
    return value


def _ordered(known: dict, extra: dict, order: tuple) -> dict:
    """Interpreted keys and kept keys in dxtbx's order, then unknown kept keys in file order.

    Kept values are deep-copied so that editing the result never edits a model.
    """
    out = {}
    for key in order:
        if key in known:
            out[key] = known[key]
        elif key in extra:
            out[key] = copy.deepcopy(extra[key])
    for key, value in extra.items():
        if key not in out and key not in known:
            out[key] = copy.deepcopy(value)
    return out


def _nested(a: np.ndarray, width: int) -> list:
    return np.asarray(a, dtype=float).reshape(-1, width).tolist()


# ------------------------------------------------------------------------------ experiments
def _experiment_from_dict(src: _Source, e, i: int, models: dict, top: dict) -> Experiment:
    where = f"experiment {i}"
    e = _dict(src, e, where)
    extra = {}
    refs: dict = {}
    for kind in MODEL_KINDS + OPAQUE_KINDS:
        if kind not in e:
            continue
        ref = e[kind]
        if ref is None:
            extra[kind] = None  # an explicit null survives the round trip
            continue
        if isinstance(ref, str):
            src.fail(
                f"has {where} naming its {kind} by the file {ref!r}, which xrefine does not read; "
                "combine the models into one file with dials.combine_experiments"
            )
        if isinstance(ref, bool) or not isinstance(ref, int):
            src.fail(f"has {where} whose {kind!r} is not a model index ({_short(ref)}); {_FIX}")
        available = len(models[kind]) if kind in models else _opaque_count(top, kind)
        if available is not None and not 0 <= ref < available:
            src.fail(
                f"has {where} referring to {kind} {ref}, but the file holds {available} {kind} "
                f"entr{'y' if available == 1 else 'ies'}; {_FIX}"
            )
        refs[kind] = models[kind][ref] if kind in models else ref
    identifier = e.get("identifier", "")
    if not isinstance(identifier, str):
        src.fail(f"has {where} whose 'identifier' is not a string ({_short(identifier)}); {_FIX}")
    for key, value in e.items():
        if key not in ("__id__", "identifier") + MODEL_KINDS + OPAQUE_KINDS:
            extra[key] = value
    if "__id__" in e and e["__id__"] != "Experiment":
        extra["__id__"] = e["__id__"]
    return Experiment(identifier=identifier, extra=extra, **refs)


def _opaque_count(top: dict, kind: str) -> Optional[int]:
    entries = top.get(kind)
    return len(entries) if isinstance(entries, list) else None


def _experiment_to_dict(e: Experiment, index: dict) -> dict:
    known: dict = {"__id__": e.extra.get("__id__", "Experiment"), "identifier": e.identifier}
    for kind in MODEL_KINDS:
        model = getattr(e, kind)
        if model is not None:
            known[kind] = index[kind][id(model)]
    for kind in OPAQUE_KINDS:
        ref = getattr(e, kind)
        if ref is not None:
            known[kind] = ref
    return _ordered(known, e.extra, _EXPERIMENT_ORDER)


# ------------------------------------------------------------------------------------ beam
def _beam_from_dict(src: _Source, d, where: str) -> Beam:
    d = _dict(src, d, where)
    direction = _array(src, _require(src, d, "direction", where), (3,), where, "direction")
    _nonzero(src, direction, where, "direction")
    if "wavelength" in d:
        wavelength = _number(src, d["wavelength"], where, "wavelength")
        if not wavelength > 0:
            src.fail(f"has {where} whose wavelength {wavelength!r} is not positive; {_FIX}")
    elif d.get("__id__", "monochromatic") != "monochromatic":
        wavelength = math.nan  # polychromatic and other beams have no single wavelength
    else:
        src.fail(f"has {where}, a monochromatic beam, without the required key 'wavelength'; {_FIX}")
    s0_at_scan_points = None
    if "s0_at_scan_points" in d:
        s0_at_scan_points = _array(src, d["s0_at_scan_points"], (-1, 3), where, "s0_at_scan_points")
    extra = {k: v for k, v in d.items() if k not in ("direction", "wavelength", "s0_at_scan_points")}
    return Beam(direction=direction, wavelength=wavelength, extra=extra, s0_at_scan_points=s0_at_scan_points)


def _beam_to_dict(beam: Beam) -> dict:
    known: dict = {"direction": np.asarray(beam.direction, dtype=float).tolist()}
    if not (math.isnan(beam.wavelength) and beam.extra.get("__id__", "monochromatic") != "monochromatic"):
        known["wavelength"] = float(beam.wavelength)
    if beam.s0_at_scan_points is not None:
        known["s0_at_scan_points"] = _nested(beam.s0_at_scan_points, 3)
    # dxtbx needs the beam's kind to read it back; simulated beams may not carry one
    extra = beam.extra if "__id__" in beam.extra else {"__id__": "monochromatic", **beam.extra}
    return _ordered(known, extra, _BEAM_ORDER)


# ------------------------------------------------------------------------------ goniometer
_MULTI_AXIS_KEYS = ("axes", "angles", "names", "scan_axis")


def _goniometer_from_dict(src: _Source, d, where: str) -> Goniometer:
    d = _dict(src, d, where)
    # dxtbx's rule: a goniometer with axes, angles and scan_axis is a MultiAxisGoniometer.
    if all(k in d for k in ("axes", "angles", "scan_axis")):
        axes = _array(src, d["axes"], (-1, 3), where, "axes")
        n = len(axes)
        if n == 0:
            src.fail(f"has {where} with an empty list of axes; {_FIX}")
        for axis in axes:
            _nonzero(src, axis, where, "axes")
        angles = _array(src, d["angles"], (n,), where, "angles")
        names = d.get("names", [""] * n)
        if not (isinstance(names, list) and len(names) == n and all(isinstance(s, str) for s in names)):
            src.fail(f"has {where} whose 'names' is not a list of {n} strings ({_short(names)}); {_FIX}")
        scan_axis = _integer(src, d["scan_axis"], where, "scan_axis")
        if not 0 <= scan_axis < n:
            src.fail(f"has {where} whose scan_axis {scan_axis} is not one of its {n} axes; {_FIX}")
        extra = {k: v for k, v in d.items() if k not in _MULTI_AXIS_KEYS + ("setting_rotation_at_scan_points",)}
        g = Goniometer.multi_axis(axes, angles, names, scan_axis, extra=extra)
    else:
        axis = _array(src, _require(src, d, "rotation_axis", where), (3,), where, "rotation_axis")
        _nonzero(src, axis, where, "rotation_axis")
        F = _array(src, d.get("fixed_rotation", np.eye(3).ravel().tolist()), (9,), where, "fixed_rotation")
        S = _array(src, d.get("setting_rotation", np.eye(3).ravel().tolist()), (9,), where, "setting_rotation")
        extra = {
            k: v
            for k, v in d.items()
            if k not in ("rotation_axis", "fixed_rotation", "setting_rotation", "setting_rotation_at_scan_points")
        }
        g = Goniometer(rotation_axis=axis, fixed_rotation=F, setting_rotation=S, extra=extra)
    if "setting_rotation_at_scan_points" in d:
        S_points = _array(src, d["setting_rotation_at_scan_points"], (-1, 9), where, "setting_rotation_at_scan_points")
        g.setting_rotation_at_scan_points = S_points.reshape(-1, 3, 3)
    return g


def _goniometer_to_dict(g: Goniometer) -> dict:
    if g.is_multi_axis and _multi_axis_matches_state(g):
        known: dict = {
            "axes": _nested(g.axes, 3),
            "angles": np.asarray(g.angles, dtype=float).tolist(),
            "names": list(g.names or [""] * len(g.axes)),
            "scan_axis": int(g.scan_axis),
        }
    else:
        # The axes and angles no longer describe the goniometer (refinement moved its setting
        # rotation): write the state itself, which any dxtbx reads as a single-axis goniometer.
        known = {
            "rotation_axis": np.asarray(g.rotation_axis, dtype=float).tolist(),
            "fixed_rotation": np.asarray(g.fixed_rotation, dtype=float).ravel().tolist(),
            "setting_rotation": np.asarray(g.setting_rotation, dtype=float).ravel().tolist(),
        }
    if g.setting_rotation_at_scan_points is not None:
        known["setting_rotation_at_scan_points"] = _nested(g.setting_rotation_at_scan_points, 9)
    return _ordered(known, g.extra, _GONIOMETER_ORDER)


def _multi_axis_matches_state(g: Goniometer) -> bool:
    described = Goniometer.multi_axis(g.axes, g.angles, g.names or [""] * len(g.axes), g.scan_axis)
    return all(
        np.allclose(a, b, rtol=0.0, atol=1e-12)
        for a, b in (
            (described.rotation_axis, g.rotation_axis),
            (described.fixed_rotation, g.fixed_rotation),
            (described.setting_rotation, g.setting_rotation),
        )
    )


# ------------------------------------------------------------------------------------ scan
def _scan_from_dict(src: _Source, d, where: str) -> Scan:
    d = _dict(src, d, where)
    image_range = _array(src, _require(src, d, "image_range", where), (2,), where, "image_range")
    first, last = (int(v) for v in image_range)
    if first != image_range[0] or last != image_range[1] or last < first:
        src.fail(f"has {where} whose image_range {_short(d['image_range'])} is not [first, last] image numbers; {_FIX}")
    n = last - first + 1
    batch_offset = _integer(src, d.get("batch_offset", 0), where, "batch_offset")

    if "properties" in d:
        properties = _dict(src, d["properties"], f"{where} properties")
        for key, column in properties.items():
            if not isinstance(column, list) or len(column) != n:
                got = len(column) if isinstance(column, list) else "no list of"
                src.fail(f"has {where} whose property {key!r} holds {got} values for its {n} images; {_FIX}")
        as_read = {k: properties[k] for k in ("oscillation", "oscillation_width") if k in properties}
        if "oscillation" in properties:
            column = _array(src, properties["oscillation"], (n,), where, "properties.oscillation")
            if n == 1:
                width = _array(
                    src,
                    _require(src, properties, "oscillation_width", f"{where} (one image)"),
                    (1,),
                    where,
                    "oscillation_width",
                )[0]
            else:
                # dxtbx holds the angles in radians and takes the width from the first two.
                width = (column[1] * _PI_180 - column[0] * _PI_180) / _PI_180
            oscillation = (column[0], width)
        else:
            oscillation = (0.0, 0.0)
        others = {k: list(v) for k, v in properties.items() if k not in ("oscillation", "oscillation_width")}
        consumed = ("image_range", "batch_offset", "properties")
    else:
        # The old form is written in the current one with its angles regenerated; without
        # angles (a scan of stills) it gets none, as in dxtbx.
        as_read = None if "oscillation" in d else {}
        start, width = _array(src, d.get("oscillation", [0.0, 0.0]), (2,), where, "oscillation")
        oscillation = (start, width)
        others = {}
        if "exposure_time" in d:
            exposure = d["exposure_time"]
            exposure = exposure if isinstance(exposure, list) else [exposure]
            others["exposure_time"] = _expand_exposure_times(
                _array(src, exposure, (-1,), where, "exposure_time"), n
            ).tolist()
        if "epochs" in d:
            others["epochs"] = _expand_epochs(_array(src, d["epochs"], (-1,), where, "epochs"), n).tolist()
        consumed = ("image_range", "batch_offset", "oscillation", "exposure_time", "epochs")

    extra = {k: v for k, v in d.items() if k not in consumed}
    scan = Scan(
        image_range=(first, last), oscillation=oscillation, batch_offset=batch_offset, properties=others, extra=extra
    )
    if as_read is not None:
        scan._oscillation_as_read = (scan.image_range, scan.oscillation, as_read)
    return scan


def _expand_exposure_times(values: np.ndarray, n: int) -> np.ndarray:
    # dxtbx: too few exposure times are padded with the last one (0 if there is none).
    if len(values) >= n:
        return values[:n]
    last = values[-1] if len(values) else 0.0
    return np.concatenate([values, np.full(n - len(values), last)])


def _expand_epochs(values: np.ndarray, n: int) -> np.ndarray:
    # dxtbx: none -> zeros, one -> repeated, too few -> continued with the last step.
    if len(values) >= n:
        return values[:n]
    if len(values) <= 1:
        return np.full(n, values[0] if len(values) else 0.0)
    step = values[-1] - values[-2]
    return np.concatenate([values, values[-1] + step * np.arange(1, n - len(values) + 1)])


def _scan_to_dict(scan: Scan) -> dict:
    n = scan.num_images
    properties = {}
    for key, column in scan.properties.items():
        if len(column) != n:
            raise ValueError(f"scan property {key!r} has {len(column)} values but the scan has {n} images")
        properties[key] = np.asarray(column).tolist() if isinstance(column, np.ndarray) else list(column)
    as_read = scan._oscillation_as_read
    if as_read is not None and as_read[0] == scan.image_range and as_read[1] == scan.oscillation:
        properties.update(copy.deepcopy(as_read[2]))
    else:
        start_rad, width_rad = scan.oscillation[0] * _PI_180, scan.oscillation[1] * _PI_180
        properties["oscillation"] = ((start_rad + width_rad * np.arange(n)) / _PI_180).tolist()
        if n == 1:
            properties["oscillation_width"] = [float(scan.oscillation[1])]
    known = {
        "image_range": [int(scan.image_range[0]), int(scan.image_range[1])],
        "batch_offset": int(scan.batch_offset),
        # dxtbx keeps scan properties in a std::map, so it writes them sorted by name.
        "properties": {key: properties[key] for key in sorted(properties)},
    }
    extra = scan.extra if "valid_image_ranges" in scan.extra else {**scan.extra, "valid_image_ranges": {}}
    return _ordered(known, extra, _SCAN_ORDER)


# --------------------------------------------------------------------------------- crystal
def _crystal_from_dict(src: _Source, d, where: str) -> Crystal:
    d = _dict(src, d, where)
    rows = [
        _array(src, _require(src, d, key, where), (3,), where, key)
        for key in ("real_space_a", "real_space_b", "real_space_c")
    ]
    hall = _string(src, _require(src, d, "space_group_hall_symbol", where), where, "space_group_hall_symbol")
    volume = abs(np.linalg.det(np.array(rows)))
    if not volume > 1e-9 * np.prod([np.linalg.norm(r) for r in rows]):
        src.fail(f"has {where} whose real_space_a, real_space_b and real_space_c span no volume; {_FIX}")
    A_at_scan_points = None
    if "A_at_scan_points" in d:
        A_at_scan_points = _array(src, d["A_at_scan_points"], (-1, 9), where, "A_at_scan_points").reshape(-1, 3, 3)
    B_covariance = None
    if "B_covariance" in d:
        B_covariance = _array(src, d["B_covariance"], (81,), where, "B_covariance").reshape(9, 9)
    interpreted = (
        "real_space_a",
        "real_space_b",
        "real_space_c",
        "space_group_hall_symbol",
        "A_at_scan_points",
        "B_covariance",
    )
    extra = {k: v for k, v in d.items() if k not in interpreted}
    return Crystal(
        real_space=np.array(rows),
        space_group_hall_symbol=hall,
        extra=extra,
        A_at_scan_points=A_at_scan_points,
        B_covariance=B_covariance,
    )


def _crystal_to_dict(crystal: Crystal) -> dict:
    a, b, c = np.asarray(crystal.real_space, dtype=float).tolist()
    known: dict = {
        "real_space_a": a,
        "real_space_b": b,
        "real_space_c": c,
        "space_group_hall_symbol": crystal.space_group_hall_symbol,
    }
    if crystal.A_at_scan_points is not None:
        known["A_at_scan_points"] = _nested(crystal.A_at_scan_points, 9)
    if crystal.B_covariance is not None:
        known["B_covariance"] = np.asarray(crystal.B_covariance, dtype=float).ravel().tolist()
    # dxtbx will not read a crystal without this tag.
    extra = crystal.extra if "__id__" in crystal.extra else {"__id__": "crystal", **crystal.extra}
    return _ordered(known, extra, _CRYSTAL_ORDER)


# -------------------------------------------------------------------------------- detector
_FRAME_KEYS = ("fast_axis", "slow_axis", "origin")


def _detector_from_dict(src: _Source, d, where: str) -> Detector:
    d = _dict(src, d, where)
    panel_dicts = _require(src, d, "panels", where)
    if not isinstance(panel_dicts, list):
        src.fail(f"has {where} whose 'panels' is not a list ({_short(panel_dicts)}); {_FIX}")
    panels = [_panel_from_dict(src, p, f"{where} panel {i}") for i, p in enumerate(panel_dicts)]
    if "hierarchy" in d:
        used: list = []
        root = _group_from_dict(src, d["hierarchy"], f"{where} hierarchy", len(panels), used)
        missing = sorted(set(range(len(panels))) - set(used))
        if missing:
            src.fail(f"has {where} whose hierarchy leaves out panel {missing[0]}; {_FIX}")
    else:
        root = None  # a flat detector: a root group with the identity frame
    extra = {k: v for k, v in d.items() if k not in _DETECTOR_ORDER}
    return Detector(panels, root=root, extra=extra)


def _local_frame(src: _Source, d: dict, where: str, required: bool) -> dict:
    if not required and not all(k in d for k in _FRAME_KEYS):
        return {}
    frame = {k: _array(src, _require(src, d, k, where), (3,), where, k) for k in _FRAME_KEYS}
    for k in ("fast_axis", "slow_axis"):
        norm = np.linalg.norm(frame[k])
        if not norm > 0:
            src.fail(f"has {where} with a zero-length {k}; {_FIX}")
        # dxtbx normalises local axes as it reads them; axes that are unit to rounding (all
        # that DIALS writes) are kept bit for bit so that the file round-trips.
        if abs(norm - 1.0) > 1e-12:
            frame[k] = frame[k] / norm
    if abs(frame["fast_axis"] @ frame["slow_axis"]) > 1e-6:
        src.fail(f"has {where} whose fast_axis and slow_axis are not perpendicular; {_FIX}")
    return {"local_fast": frame["fast_axis"], "local_slow": frame["slow_axis"], "local_origin": frame["origin"]}


def _panel_from_dict(src: _Source, d, where: str) -> Panel:
    d = _dict(src, d, where)
    name = _string(src, d.get("name", ""), where, "name")
    frame = _local_frame(src, d, where, required=True)
    image_size = _array(src, _require(src, d, "image_size", where), (2,), where, "image_size")
    if np.any(image_size != np.round(image_size)) or np.any(image_size < 0):
        src.fail(f"has {where} whose image_size {_short(d['image_size'])} is not two pixel counts; {_FIX}")
    pixel_size = _array(src, _require(src, d, "pixel_size", where), (2,), where, "pixel_size")
    if not np.all(pixel_size > 0):
        src.fail(f"has {where} whose pixel_size {_short(d['pixel_size'])} is not two positive sizes; {_FIX}")
    thickness = _number(src, d.get("thickness", 0.0), where, "thickness")
    mu = _number(src, d.get("mu", 0.0), where, "mu")
    strategy = d.get("px_mm_strategy", {"type": "SimplePxMmStrategy"})
    if not isinstance(strategy, dict) or not isinstance(strategy.get("type"), str):
        src.fail(f"has {where} whose px_mm_strategy has no type ({_short(strategy)}); {_FIX}")
    if "mu" in strategy and "t0" in strategy:
        # dxtbx lets the strategy's own mu and t0 override the panel's.
        mu = _number(src, strategy["mu"], where, "px_mm_strategy.mu")
        thickness = _number(src, strategy["t0"], where, "px_mm_strategy.t0")
    interpreted = ("name", "image_size", "pixel_size", "thickness", "mu") + _FRAME_KEYS
    extra = {k: v for k, v in d.items() if k not in interpreted}
    return Panel(
        name=name,
        image_size=(int(image_size[0]), int(image_size[1])),
        pixel_size=(pixel_size[0], pixel_size[1]),
        thickness=thickness,
        mu=mu,
        parallax=strategy["type"] in _PARALLAX_STRATEGIES,
        extra=extra,
        **frame,
    )


def _group_from_dict(src: _Source, d, where: str, n_panels: int, used: list) -> DetectorGroup:
    d = _dict(src, d, where)
    children = _require(src, d, "children", where)
    if not isinstance(children, list):
        src.fail(f"has {where} whose 'children' is not a list ({_short(children)}); {_FIX}")
    nodes: list = []
    for i, child in enumerate(children):
        child_where = f"{where} child {i}"
        child = _dict(src, child, child_where)
        if "panel" in child:
            index = _integer(src, child["panel"], child_where, "panel")
            if not 0 <= index < n_panels:
                src.fail(f"has {child_where} naming panel {index}, but the detector has {n_panels} panels; {_FIX}")
            if index in used:
                src.fail(f"has a detector hierarchy that lists panel {index} twice ({child_where}); {_FIX}")
            used.append(index)
            nodes.append(index)
        else:
            nodes.append(_group_from_dict(src, child, child_where, n_panels, used))
    name = _string(src, d.get("name", ""), where, "name")
    frame = _local_frame(src, d, where, required=False)
    extra = {k: v for k, v in d.items() if k not in ("name", "children") + _FRAME_KEYS}
    return DetectorGroup(name=name, children=nodes, extra=extra, **frame)


def _frame_to_dict(node) -> dict:
    return {
        "fast_axis": np.asarray(node.local_fast, dtype=float).tolist(),
        "slow_axis": np.asarray(node.local_slow, dtype=float).tolist(),
        "origin": np.asarray(node.local_origin, dtype=float).tolist(),
    }


def _panel_to_dict(panel: Panel) -> dict:
    known: dict = {
        "name": panel.name,
        **_frame_to_dict(panel),
        "image_size": [int(panel.image_size[0]), int(panel.image_size[1])],
        "pixel_size": [float(panel.pixel_size[0]), float(panel.pixel_size[1])],
        "thickness": float(panel.thickness),
        "mu": float(panel.mu),
        "px_mm_strategy": _strategy_to_dict(panel),
    }
    return _ordered(known, panel.extra, _PANEL_ORDER)


def _strategy_to_dict(panel: Panel) -> dict:
    kept = panel.extra.get("px_mm_strategy")
    if isinstance(kept, dict) and (kept.get("type") in _PARALLAX_STRATEGIES) == bool(panel.parallax):
        strategy = copy.deepcopy(kept)
        if "mu" in strategy and "t0" in strategy:
            strategy["mu"], strategy["t0"] = float(panel.mu), float(panel.thickness)
        return strategy
    return {"type": _PARALLAX_STRATEGIES[0] if panel.parallax else "SimplePxMmStrategy"}


def _group_to_dict(group: DetectorGroup) -> dict:
    children = [_group_to_dict(c) if isinstance(c, DetectorGroup) else {"panel": int(c)} for c in group.children]
    known = {"name": group.name, **_frame_to_dict(group), "children": children}
    return _ordered(known, group.extra, _GROUP_ORDER)


def _detector_to_dict(detector: Detector) -> dict:
    known = {
        "panels": [_panel_to_dict(p) for p in detector.panels],
        "hierarchy": _group_to_dict(detector.root),
    }
    return _ordered(known, detector.extra, _DETECTOR_ORDER)
