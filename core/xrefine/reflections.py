"""`ReflectionTable`: a columnar table of NumPy arrays with DIALS column names and flag bits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["ReflectionTable", "Flags", "OpaqueColumn", "COLUMN_DTYPES", "concatenate"]


class Flags:
    """DIALS reflection flag bits (the `flags` column, std::size_t)."""

    predicted = 1 << 0
    observed = 1 << 1
    indexed = 1 << 2
    used_in_refinement = 1 << 3
    strong = 1 << 5
    reference_spot = 1 << 6
    overloaded = 1 << 10
    centroid_outlier = 1 << 17
    excluded_for_refinement = 1 << 25
    not_suitable_for_refinement = 1 << 27
    bad_for_refinement = excluded_for_refinement | centroid_outlier | not_suitable_for_refinement


# DIALS column type name -> (NumPy dtype, elements per row)
COLUMN_DTYPES = {
    "bool": (np.dtype("bool"), 1),
    "int": (np.dtype("<i4"), 1),
    "std::size_t": (np.dtype("<u8"), 1),
    "double": (np.dtype("<f8"), 1),
    "vec2<double>": (np.dtype("<f8"), 2),
    "vec3<double>": (np.dtype("<f8"), 3),
    "mat3<double>": (np.dtype("<f8"), 9),
    "int6": (np.dtype("<i4"), 6),
    "cctbx::miller::index<>": (np.dtype("<i4"), 3),
}


@dataclass
class OpaqueColumn:
    """A column xrefine never decodes (shoeboxes, strings, unknown types): kept verbatim."""

    type_name: str
    payload: object  # exactly what the file held for this column's data


class ReflectionTable:
    """Columns of equal length keyed by DIALS names.

    Numeric columns are NumPy arrays (n,) or (n, k); their DIALS type is recorded in `types`
    (guessed from the array shape and dtype for new columns).  `identifiers` maps experiment
    index (the `id` column) to the experiment's identifier string.
    """

    def __init__(self, nrows: int = 0, identifiers: Optional[dict] = None):
        self.nrows = int(nrows)
        self.columns: dict = {}
        self.types: dict = {}
        self.identifiers: dict = dict(identifiers or {})

    # --- columns
    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __getitem__(self, name: str):
        return self.columns[name]

    def __setitem__(self, name: str, value) -> None:
        if isinstance(value, OpaqueColumn):
            self.columns[name] = value
            self.types[name] = value.type_name
            return
        arr = np.asarray(value)
        if arr.shape[0] != self.nrows:
            raise ValueError(f"column {name!r} has {arr.shape[0]} rows, table has {self.nrows}")
        type_name = self.types.get(name) or _guess_type(name, arr)
        dtype, width = COLUMN_DTYPES[type_name]
        arr = np.ascontiguousarray(arr, dtype=dtype)
        if width > 1:
            arr = arr.reshape(self.nrows, width)
        self.columns[name] = arr
        self.types[name] = type_name

    def __delitem__(self, name: str) -> None:
        del self.columns[name]
        del self.types[name]

    def keys(self):
        return self.columns.keys()

    def __len__(self) -> int:
        return self.nrows

    # --- flags
    def get_flags(self, bits: int) -> np.ndarray:
        """Rows where any of `bits` is set."""
        if "flags" not in self.columns:
            return np.zeros(self.nrows, dtype=bool)
        return (self.columns["flags"] & np.uint64(bits)) != 0

    def set_flags(self, mask: np.ndarray, bits: int) -> None:
        if "flags" not in self.columns:
            self["flags"] = np.zeros(self.nrows, dtype=np.uint64)
        self.columns["flags"][mask] |= np.uint64(bits)

    def unset_flags(self, mask: np.ndarray, bits: int) -> None:
        if "flags" in self.columns:
            self.columns["flags"][mask] &= ~np.uint64(bits)

    def select(self, rows: np.ndarray) -> "ReflectionTable":
        """A new table of the given rows (bool mask or indices).  Opaque columns cannot be
        subset row by row and are dropped from the result."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        out = ReflectionTable(len(rows), self.identifiers)
        for name, col in self.columns.items():
            if isinstance(col, OpaqueColumn):
                continue
            out.columns[name] = col[rows]
            out.types[name] = self.types[name]
        return out


def _guess_type(name: str, arr: np.ndarray) -> str:
    if name == "miller_index":
        return "cctbx::miller::index<>"
    if name in ("flags", "panel"):
        return "std::size_t"
    width = 1 if arr.ndim == 1 else int(np.prod(arr.shape[1:]))
    if arr.dtype == bool:
        return "bool"
    if np.issubdtype(arr.dtype, np.integer):
        return {1: "int", 6: "int6", 3: "cctbx::miller::index<>"}[width]
    return {1: "double", 2: "vec2<double>", 3: "vec3<double>", 9: "mat3<double>"}[width]


def concatenate(tables: list) -> ReflectionTable:
    """Rows of several tables with the same numeric columns, one after the other."""
    if not tables:
        return ReflectionTable(0)
    out = ReflectionTable(sum(t.nrows for t in tables))
    for name in tables[0].keys():
        if any(isinstance(t.columns.get(name), OpaqueColumn) or name not in t for t in tables):
            continue
        out.columns[name] = np.concatenate([t[name] for t in tables])
        out.types[name] = tables[0].types[name]
    for t in tables:
        out.identifiers.update(t.identifiers)
    return out
