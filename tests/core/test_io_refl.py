"""Reflection tables: byte-identical round trips of DIALS's files, opaque columns, and
one-sentence errors for damaged files."""

import struct
from pathlib import Path

import msgpack
import numpy as np
import pytest

from xrefine.errors import InputError
from xrefine.io import read_reflections, write_reflections
from xrefine.reflections import Flags, OpaqueColumn, ReflectionTable

DATA = Path(__file__).resolve().parents[1] / "data" / "lysozyme-eiger"
INDEXED = DATA / "indexed.refl"
REFINED = DATA / "refined.refl"
UUID = "42e53a9f-7eb1-4df5-86b0-9bde93742d10"


def dials_bytes(columns, nrows, identifiers=None, version=2):
    """A file packed as DIALS packs it (columns in std::map order); msgpack-python packs
    DIALS's files byte for byte, which test_python_msgpack_packs_like_dials checks."""
    data = {name: [type_name, payload] for name, (type_name, payload) in sorted(columns.items())}
    header = {"identifiers": identifiers or {}, "nrows": nrows, "data": data}
    return msgpack.packb(["dials::af::reflection_table", version, header], use_bin_type=True)


def test_python_msgpack_packs_like_dials():
    raw = INDEXED.read_bytes()
    assert msgpack.packb(msgpack.unpackb(raw, strict_map_key=False), use_bin_type=True) == raw


# ------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("path", [INDEXED, REFINED], ids=lambda p: p.name)
def test_read_write_is_byte_identical(path, tmp_path):
    write_reflections(read_reflections(path), tmp_path / "out.refl")
    assert (tmp_path / "out.refl").read_bytes() == path.read_bytes()


def test_columns_have_dials_types_and_values():
    table = read_reflections(INDEXED)
    raw = msgpack.unpackb(INDEXED.read_bytes(), strict_map_key=False)[2]
    assert table.nrows == raw["nrows"] == 14767
    assert table.identifiers == {0: UUID}
    assert list(table.keys()) == list(raw["data"])
    expected = {
        "miller_index": ("cctbx::miller::index<>", np.int32, (14767, 3)),
        "flags": ("std::size_t", np.uint64, (14767,)),
        "panel": ("std::size_t", np.uint64, (14767,)),
        "id": ("int", np.int32, (14767,)),
        "entering": ("bool", np.bool_, (14767,)),
        "bbox": ("int6", np.int32, (14767, 6)),
        "intensity.sum.value": ("double", np.float64, (14767,)),
        "xyzobs.mm.value": ("vec3<double>", np.float64, (14767, 3)),
    }
    for name, (type_name, dtype, shape) in expected.items():
        assert table.types[name] == type_name
        assert table[name].dtype == dtype and table[name].shape == shape
        assert table[name].tobytes() == raw["data"][name][1][1]
    assert np.all(table["flags"] == Flags.indexed | Flags.strong)
    assert np.all(table["id"] == 0)


def test_columns_are_writable_views_of_the_file_where_aligned(tmp_path):
    table = read_reflections(INDEXED)
    numeric = [table[name] for name in table.keys()]
    assert all(c.flags.writeable and c.flags.aligned and c.flags.c_contiguous for c in numeric)
    assert any(not c.flags.owndata for c in numeric)  # zero-copy where alignment allows

    table.set_flags(np.arange(table.nrows) < 10, Flags.used_in_refinement)
    table["xyzobs.mm.value"][:, 2] += 0.5
    write_reflections(table, tmp_path / "changed.refl")
    back = read_reflections(tmp_path / "changed.refl")
    assert np.array_equal(back["flags"], table["flags"]) and back.get_flags(Flags.used_in_refinement).sum() == 10
    assert np.array_equal(back["xyzobs.mm.value"], table["xyzobs.mm.value"])
    original = msgpack.unpackb(INDEXED.read_bytes(), strict_map_key=False)[2]["data"]
    written = msgpack.unpackb((tmp_path / "changed.refl").read_bytes(), strict_map_key=False)[2]["data"]
    for name in original:
        if name not in ("flags", "xyzobs.mm.value"):
            assert written[name] == original[name]


def test_refinement_output_columns_are_packed_where_dials_packs_them(tmp_path):
    # dials.refine changes flags and s1 of indexed.refl and adds xyzcal.mm and xyzcal.px
    table = read_reflections(INDEXED)
    refined = read_reflections(REFINED)
    table["flags"] = refined["flags"]
    table["s1"] = refined["s1"]
    table["xyzcal.mm"] = refined["xyzcal.mm"].copy()
    table.types["xyzcal.px"] = "vec3<double>"
    table["xyzcal.px"] = refined["xyzcal.px"].copy()
    write_reflections(table, tmp_path / "refined.refl")
    assert (tmp_path / "refined.refl").read_bytes() == REFINED.read_bytes()


def test_version_1_is_read_and_written_as_version_2(tmp_path):
    raw = bytearray(INDEXED.read_bytes())
    version_at = 1 + 1 + len("dials::af::reflection_table")
    assert raw[version_at] == 2
    raw[version_at] = 1
    (tmp_path / "v1.refl").write_bytes(raw)
    write_reflections(read_reflections(tmp_path / "v1.refl"), tmp_path / "v2.refl")
    assert (tmp_path / "v2.refl").read_bytes() == INDEXED.read_bytes()


def test_a_table_made_in_code_round_trips(tmp_path):
    n = 5
    table = ReflectionTable(n, identifiers={3: "abc", 1: "def"})
    table["miller_index"] = np.arange(3 * n).reshape(n, 3)
    table["flags"] = np.full(n, Flags.indexed, dtype=np.uint64)
    table["id"] = np.array([1, 1, 3, 3, 3])
    table["xyzobs.mm.value"] = np.random.default_rng(0).normal(size=(n, 3))
    table["entering"] = np.array([True, False, True, True, False])
    write_reflections(table, tmp_path / "new.refl")
    back = read_reflections(tmp_path / "new.refl")
    assert back.identifiers == {1: "def", 3: "abc"}
    for name in table.keys():
        assert back.types[name] == table.types[name]
        assert np.array_equal(back[name], table[name])
    header = msgpack.unpackb((tmp_path / "new.refl").read_bytes(), strict_map_key=False)
    assert header[1] == 2 and list(header[2]) == ["identifiers", "nrows", "data"]
    assert list(header[2]["identifiers"]) == [1, 3]
    assert list(header[2]["data"]) == sorted(table.keys())


def test_empty_table_round_trips(tmp_path):
    raw = dials_bytes({"flags": ("std::size_t", [0, b""]), "s1": ("vec3<double>", [0, b""])}, nrows=0)
    (tmp_path / "empty.refl").write_bytes(raw)
    table = read_reflections(tmp_path / "empty.refl")
    assert table.nrows == 0 and table["s1"].shape == (0, 3)
    write_reflections(table, tmp_path / "out.refl")
    assert (tmp_path / "out.refl").read_bytes() == raw


# ---------------------------------------------------------------------------- opaque columns
def shoebox_bytes():
    """Two rows as DIALS's v2 shoebox packer writes them: one without pixel data, one with."""
    empty = struct.pack("<I6iB", 0, 10, 12, 20, 23, 4, 5, 0)
    bbox = (30, 32, 40, 41, 7, 8)  # 1 x 1 x 2 pixels
    size = (bbox[1] - bbox[0]) * (bbox[3] - bbox[2]) * (bbox[5] - bbox[4])
    full = struct.pack("<I6iB", 0, *bbox, 2)
    full += np.arange(size, dtype="<f4").tobytes() + bytes([5] * size) + np.ones(size, dtype="<f4").tobytes()
    return empty + full


def test_string_shoebox_and_unknown_columns_are_kept_verbatim(tmp_path):
    # DIALS packs a std::string column as the raw bytes of its std::string objects (DIALS issue
    # #1858); the bytes mean nothing outside that process, so they are only carried.
    raw_strings = bytes(range(64))
    columns = {
        "label": ("std::string", [2, raw_strings]),
        "shoebox": ("Shoebox<>", [2, shoebox_bytes()]),
        "slices": ("FrameSlicedShoebox<>", [2, b"\x03" + bytes(20)]),
        "mystery": ("std::vector<thing>", [2, [{"a": 1}, [1.5, "x", None, True]]]),
        "xyzobs.px.value": ("vec3<double>", [2, np.arange(6, dtype="<f8").tobytes()]),
    }
    raw = dials_bytes(columns, nrows=2, identifiers={0: UUID})
    (tmp_path / "opaque.refl").write_bytes(raw)
    table = read_reflections(tmp_path / "opaque.refl")
    assert isinstance(table["label"], OpaqueColumn) and table["label"].type_name == "std::string"
    assert table["label"].payload == [2, raw_strings]
    assert table["shoebox"].payload == [2, shoebox_bytes()]
    assert table["mystery"].payload == [2, [{"a": 1}, [1.5, "x", None, True]]]
    assert np.array_equal(table["xyzobs.px.value"], np.arange(6.0).reshape(2, 3))
    write_reflections(table, tmp_path / "out.refl")
    assert (tmp_path / "out.refl").read_bytes() == raw


# -------------------------------------------------------------------------------------- errors
def real_header():
    return msgpack.unpackb(INDEXED.read_bytes(), strict_map_key=False)


def damaged_column_rows():
    obj = real_header()
    obj[2]["data"]["s1"][1][0] = 14766
    return msgpack.packb(obj, use_bin_type=True)


def damaged_column_bytes():
    obj = real_header()
    obj[2]["data"]["id"][1][1] = obj[2]["data"]["id"][1][1][:-4]
    return msgpack.packb(obj, use_bin_type=True)


def with_header(**changes):
    obj = real_header()
    obj[2].update(changes)
    return msgpack.packb(obj, use_bin_type=True)


BAD_FILES = {
    "empty": (b"", "is empty"),
    "garbage": (b"\x00\x01 hello, not msgpack", "does not start with 'dials::af::reflection_table'"),
    "truncated": (INDEXED.read_bytes()[:1_000_000], "ends in the middle of the reflection table"),
    "truncated header": (INDEXED.read_bytes()[:40], "ends in the middle of the reflection table"),
    "wrong magic": (msgpack.packb(["dials::af::shoebox_table", 2, {}]), "starts with 'dials::af::shoebox_table'"),
    "four items": (msgpack.packb(["dials::af::reflection_table", 2, {}, 0]), "an array of 4 items, not 3"),
    "version 3": (
        msgpack.packb(["dials::af::reflection_table", 3, {}]),
        "version 3, but xrefine reads versions 1 and 2",
    ),
    "column rows differ from nrows": (damaged_column_rows(), "column 's1' has 14766 rows but the table has 14767"),
    "column bytes short": (damaged_column_bytes(), "column 'id' (int) holds 59064 bytes where 14767 rows need 59068"),
    "nrows missing": (msgpack.packb(["dials::af::reflection_table", 2, {"data": {}}]), "'nrows'"),
    "data missing": (msgpack.packb(["dials::af::reflection_table", 2, {"nrows": 0}]), "no column data"),
    "unknown header key": (with_header(sorted=True), "unknown header key 'sorted'"),
    "identifier key not an int": (with_header(identifiers={"0": UUID}), "an identifier key is not a msgpack integer"),
    "trailing bytes": (INDEXED.read_bytes() + b"\x00\x00", "2 stray bytes after the reflection table"),
    "a json file": (b'{"__id__": "ExperimentList"}', "is JSON (an experiment list?)"),
    "an old pickle": (b"\x80\x02cdials_array_family_flex_ext\nreflection_table", "pickle from a DIALS older than 2.0"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_damaged_files_raise_one_clear_sentence(case, tmp_path):
    content, expected = BAD_FILES[case]
    path = tmp_path / "bad.refl"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_reflections(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message and message.endswith(".")
    assert info.value.__cause__ is None


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.refl does not exist; check the path"):
        read_reflections(tmp_path / "nothing.refl")


def test_bad_column_shapes_are_a_bug_not_an_input_error(tmp_path):
    table = read_reflections(INDEXED)
    table.columns["s1"] = table["s1"][:10]
    with pytest.raises(ValueError, match="s1"):
        write_reflections(table, tmp_path / "out.refl")
    assert not (tmp_path / "out.refl").exists()
