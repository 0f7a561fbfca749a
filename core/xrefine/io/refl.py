"""DIALS reflection tables (`.refl`, msgpack) to and from `ReflectionTable`.

The file is one msgpack array, as DIALS's reflection_table_msgpack_adapter.h packs it:

    ["dials::af::reflection_table", VERSION,
     {"identifiers": {id: "uuid", ...}, "nrows": N, "data": {column: [TYPE, [N, BYTES]], ...}}]

Numeric columns are packed little-endian C arrays in one msgpack bin each.  They are read as
NumPy views of the file's bytes (copied only when a view would be misaligned), so reading costs
one pass over the file and no Python loop over rows.  Columns of other types — `std::string`
(which DIALS writes as raw std::string objects, see FORMATS.md), `Shoebox<>`,
`FrameSlicedShoebox<>` and anything unknown — are kept as `OpaqueColumn`s holding the decoded
msgpack value of their data, and written back unchanged.

The writer packs exactly what DIALS packs (columns and identifiers in std::map order), so a table
read and written unchanged is byte-identical to DIALS's file.  It always writes VERSION 2.
"""

from __future__ import annotations

import struct

import msgpack
import numpy as np

from ..errors import InputError
from ..reflections import COLUMN_DTYPES, OpaqueColumn, ReflectionTable
from . import _read_input, atomic_write

__all__ = ["read_reflections", "write_reflections"]

MAGIC = "dials::af::reflection_table"
READ_VERSIONS = (1, 2)
WRITE_VERSION = 2

_DAMAGED = "the file is damaged or was not written by DIALS, so write it again with DIALS"


class _Truncated(Exception):
    pass


class _Malformed(Exception):
    pass


class _Cursor:
    """Reads msgpack headers and scalars at a position in the file's bytes, without copying
    bins; just enough of msgpack for the table's fixed layout, plus skipping any value."""

    def __init__(self, buf: bytearray):
        self.buf = buf
        self.view = memoryview(buf)
        self.pos = 0

    def _take(self, n: int) -> int:
        start = self.pos
        if start + n > len(self.buf):
            raise _Truncated
        self.pos = start + n
        return start

    def _byte(self) -> int:
        return self.buf[self._take(1)]

    def _uint(self, size: int) -> int:
        start = self._take(size)
        return int.from_bytes(self.buf[start : start + size], "big")

    def array_header(self, what: str) -> int:
        b = self._byte()
        if 0x90 <= b <= 0x9F:
            return b & 0x0F
        if b == 0xDC:
            return self._uint(2)
        if b == 0xDD:
            return self._uint(4)
        raise _Malformed(f"{what} is not a msgpack array")

    def map_header(self, what: str) -> int:
        b = self._byte()
        if 0x80 <= b <= 0x8F:
            return b & 0x0F
        if b == 0xDE:
            return self._uint(2)
        if b == 0xDF:
            return self._uint(4)
        raise _Malformed(f"{what} is not a msgpack map")

    def string(self, what: str) -> str:
        b = self._byte()
        if 0xA0 <= b <= 0xBF:
            n = b & 0x1F
        elif b in (0xD9, 0xDA, 0xDB):
            n = self._uint({0xD9: 1, 0xDA: 2, 0xDB: 4}[b])
        else:
            raise _Malformed(f"{what} is not a msgpack string")
        start = self._take(n)
        try:
            return self.buf[start : start + n].decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed(f"{what} is not valid UTF-8") from None

    def integer(self, what: str) -> int:
        b = self._byte()
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xCC <= b <= 0xCF:
            return self._uint(1 << (b - 0xCC))
        if 0xD0 <= b <= 0xD3:
            size = 1 << (b - 0xD0)
            start = self._take(size)
            return int.from_bytes(self.buf[start : start + size], "big", signed=True)
        raise _Malformed(f"{what} is not a msgpack integer")

    def bin(self, what: str) -> tuple:
        """(offset, length) of a bin's bytes in the buffer."""
        b = self._byte()
        if b not in (0xC4, 0xC5, 0xC6):
            raise _Malformed(f"{what} is not msgpack binary data")
        n = self._uint({0xC4: 1, 0xC5: 2, 0xC6: 4}[b])
        return self._take(n), n

    def skip(self) -> None:
        """Move past one complete msgpack value of any type."""
        pending = 1
        while pending:
            pending -= 1
            b = self._byte()
            if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
                continue
            if 0x80 <= b <= 0x8F:
                pending += 2 * (b & 0x0F)
            elif 0x90 <= b <= 0x9F:
                pending += b & 0x0F
            elif 0xA0 <= b <= 0xBF:
                self._take(b & 0x1F)
            elif b in _LENGTH_PREFIXED:
                size, extra = _LENGTH_PREFIXED[b]
                self._take(self._uint(size) + extra)
            elif b in _FIXED_SIZE:
                self._take(_FIXED_SIZE[b])
            elif b in (0xDC, 0xDD):
                pending += self._uint(2 if b == 0xDC else 4)
            elif b in (0xDE, 0xDF):
                pending += 2 * self._uint(2 if b == 0xDE else 4)
            else:
                raise _Malformed(f"byte 0x{b:02x} at offset {self.pos - 1} is not msgpack")


# msgpack type byte -> (size of the length field, bytes after the payload's length)
_LENGTH_PREFIXED = {
    0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin
    0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),  # ext: a type byte follows the length
    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str
}  # fmt: skip
# msgpack type byte -> bytes that follow it
_FIXED_SIZE = {
    0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext: type byte + 1..16 bytes
}  # fmt: skip


def read_reflections(path) -> ReflectionTable:
    """Read a DIALS reflection table (`.refl`, msgpack VERSION 1 or 2).

    Numeric columns become NumPy arrays (n,) or (n, k) with their DIALS type in
    `table.types`; `std::string`, shoebox and unknown columns become `OpaqueColumn`s.
    Raises InputError naming the file (and column) for anything malformed.
    """
    name = str(path)
    buf = _read_input(path, "reflection table")
    if buf[:64].lstrip()[:1] == b"{":
        raise InputError(f"{name} is JSON (an experiment list?), not a DIALS reflection table; give the .refl file.")
    if buf[:1] == b"\x80":
        raise InputError(
            f"{name} is a pickle from a DIALS older than 2.0, which xrefine cannot read; "
            "convert it to msgpack with a current DIALS."
        )
    cursor = _Cursor(buf)
    try:
        return _parse(cursor, name)
    except _Truncated:
        raise InputError(f"{name} ends in the middle of the reflection table (truncated?); {_DAMAGED}.") from None
    except _Malformed as exc:
        raise InputError(f"{name} is not a valid DIALS reflection table ({exc}); {_DAMAGED}.") from None


def _parse(cursor: _Cursor, name: str) -> ReflectionTable:
    if not len(cursor.buf):
        raise InputError(f"{name} is empty; write the reflection table again with DIALS.")
    try:
        n_items = cursor.array_header("the file")
        magic = cursor.string("the file's first item")
    except _Malformed:
        raise InputError(
            f"{name} is not a DIALS reflection table (it does not start with {MAGIC!r}); give the .refl file."
        ) from None
    if magic != MAGIC:
        raise InputError(
            f"{name} is not a DIALS reflection table (it starts with {magic!r}, not {MAGIC!r}); give the .refl file."
        )
    if n_items != 3:
        raise _Malformed(f"the table is an array of {n_items} items, not 3")
    version = cursor.integer("the version")
    if version not in READ_VERSIONS:
        raise InputError(
            f"{name} is a reflection table of version {version}, but xrefine reads versions 1 and 2; "
            "write it with a DIALS that xrefine can read."
        )

    identifiers: dict = {}
    nrows = None
    columns: list = []
    seen_data = False
    for _ in range(cursor.map_header("the table header")):
        key = cursor.string("a header key")
        if key == "identifiers":
            for _ in range(cursor.map_header("identifiers")):
                exp_id = cursor.integer("an identifier key")
                identifiers[exp_id] = cursor.string(f"the identifier of experiment {exp_id}")
        elif key == "nrows":
            nrows = cursor.integer("nrows")
        elif key == "data":
            seen_data = True
            for _ in range(cursor.map_header("the column map")):
                columns.append(_column_entry(cursor))
        else:
            raise InputError(f"{name} has an unknown header key {key!r} that DIALS would reject; {_DAMAGED}.")
    if cursor.pos != len(cursor.buf):
        raise InputError(
            f"{name} has {len(cursor.buf) - cursor.pos} stray bytes after the reflection table; {_DAMAGED}."
        )
    if nrows is None or nrows < 0:
        raise InputError(f"{name} does not say how many rows the table has ('nrows'); {_DAMAGED}.")
    if not seen_data:
        raise InputError(f"{name} has no column data ('data'); {_DAMAGED}.")

    table = ReflectionTable(nrows, identifiers)
    for column_name, type_name, payload in columns:
        if type_name in COLUMN_DTYPES:
            table.types[column_name] = type_name
            table[column_name] = _numeric_column(cursor.buf, name, column_name, type_name, nrows, *payload)
        else:
            table[column_name] = OpaqueColumn(type_name, _opaque_payload(cursor, name, column_name, nrows, *payload))
    return table


def _column_entry(cursor: _Cursor) -> tuple:
    """(name, type, payload position) of one column, checking only the msgpack structure."""
    column_name = cursor.string("a column name")
    what = f"column {column_name!r}"
    if cursor.array_header(what) != 2:
        raise _Malformed(f"{what} is not a [type, data] pair")
    type_name = cursor.string(f"the type of {what}")
    if type_name in COLUMN_DTYPES:
        if cursor.array_header(f"the data of {what}") != 2:
            raise _Malformed(f"the data of {what} is not a [rows, bytes] pair")
        n = cursor.integer(f"the row count of {what}")
        return column_name, type_name, (n, *cursor.bin(f"the bytes of {what}"))
    start = cursor.pos
    cursor.skip()
    return column_name, type_name, (start, cursor.pos)


def _numeric_column(
    buf: bytearray, name: str, column: str, type_name: str, nrows: int, n: int, offset: int, length: int
):
    dtype, width = COLUMN_DTYPES[type_name]
    if n != nrows:
        raise InputError(f"{name}: column {column!r} has {n} rows but the table has {nrows}; {_DAMAGED}.")
    expected = n * width * dtype.itemsize
    if length != expected:
        raise InputError(
            f"{name}: column {column!r} ({type_name}) holds {length} bytes where {n} rows need {expected}; {_DAMAGED}."
        )
    if n == 0:
        arr = np.empty(0, dtype=dtype)
    else:
        arr = np.frombuffer(buf, dtype=dtype, count=n * width, offset=offset)
        if not arr.flags.aligned:
            arr = arr.copy()  # unaligned views are slow in every later computation
    return arr.reshape(n, width) if width > 1 else arr


def _opaque_payload(cursor: _Cursor, name: str, column: str, nrows: int, start: int, end: int):
    try:
        payload = msgpack.unpackb(cursor.view[start:end], raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise InputError(f"{name}: column {column!r} cannot be decoded ({exc}); {_DAMAGED}.") from None
    # DIALS packs every column as [rows, data]; a different row count means a damaged file.
    if isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int) and payload[0] != nrows:
        raise InputError(f"{name}: column {column!r} has {payload[0]} rows but the table has {nrows}; {_DAMAGED}.")
    return payload


def write_reflections(table: ReflectionTable, path) -> None:
    """Write a reflection table as a DIALS `.refl` file (msgpack, VERSION 2).

    Columns and identifiers are written in DIALS's (sorted) order; opaque columns are written
    back exactly as read.  The file is replaced atomically.
    """
    atomic_write(path, b"".join(_pack_table(table)))


def _pack_table(table: ReflectionTable) -> list:
    nrows = int(table.nrows)
    chunks = [_array_header(3), msgpack.packb(MAGIC), msgpack.packb(WRITE_VERSION), _map_header(3)]
    chunks += [msgpack.packb("identifiers"), _map_header(len(table.identifiers))]
    for exp_id in sorted(table.identifiers):
        chunks += [msgpack.packb(int(exp_id)), msgpack.packb(str(table.identifiers[exp_id]))]
    chunks += [msgpack.packb("nrows"), msgpack.packb(nrows), msgpack.packb("data"), _map_header(len(table.columns))]
    # DIALS keeps columns in a std::map: byte-wise sorted names.
    for column_name in sorted(table.columns, key=lambda s: s.encode("utf-8")):
        column = table.columns[column_name]
        chunks += [msgpack.packb(column_name), _array_header(2)]
        if isinstance(column, OpaqueColumn):
            chunks += [msgpack.packb(column.type_name), msgpack.packb(column.payload, use_bin_type=True)]
            continue
        type_name = table.types[column_name]
        dtype, width = COLUMN_DTYPES[type_name]
        data = np.ascontiguousarray(column, dtype=dtype)
        if data.size != nrows * width or data.shape[0] != nrows:
            raise ValueError(
                f"column {column_name!r} has shape {data.shape}, the table has {nrows} rows of {type_name}"
            )
        chunks += [msgpack.packb(type_name), _array_header(2), msgpack.packb(nrows), _bin_header(data.nbytes)]
        chunks.append(memoryview(data.reshape(-1)).cast("B"))
    return chunks


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    return struct.pack(">BH", 0xDC, n) if n < 1 << 16 else struct.pack(">BI", 0xDD, n)


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return struct.pack(">BH", 0xDE, n) if n < 1 << 16 else struct.pack(">BI", 0xDF, n)


def _bin_header(n: int) -> bytes:
    if n >= 1 << 32:
        raise ValueError(f"a column of {n} bytes is more than a msgpack bin can hold (4 GiB)")
    if n < 1 << 8:
        return struct.pack(">BB", 0xC4, n)
    return struct.pack(">BH", 0xC5, n) if n < 1 << 16 else struct.pack(">BI", 0xC6, n)
