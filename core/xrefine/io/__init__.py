"""Reading and writing DIALS files: experiment lists (`.expt`) and reflection tables (`.refl`).

Both formats are read and written as DIALS/dxtbx do (FORMATS.md, docs/): a file xrefine writes
reads back in DIALS, and a file read and written unchanged is identical to the original.  Every
problem with an input file raises `xrefine.errors.InputError` with one sentence naming the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InputError

__all__ = [
    "read_experiments",
    "write_experiments",
    "experiments_from_dict",
    "experiments_to_dict",
    "read_reflections",
    "write_reflections",
    "atomic_write",
]


def atomic_write(path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one.

    The bytes go to a temporary file in the same directory, are flushed to disk, and the
    temporary file then replaces `path` in one rename; an interrupted write leaves `path`
    untouched and no partial file behind.  The new file keeps the permissions of the file it
    replaces (or gets the usual ones for a new file).  Raises InputError if the directory
    cannot be written.
    """
    path = Path(path)
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}; choose another output path.") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InputError(
            f"cannot write {path}: {exc.strerror} in {directory}; choose an output path in a writable directory."
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror}; choose another output path.") from None
        raise


def _umask() -> int:
    # The only portable way to read the umask is to set it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _read_input(path, what: str) -> bytearray:
    """The bytes of an input file, as a mutable buffer (array views into it stay writable).

    `what` names the expected content for the error message, e.g. "experiment list".
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = bytearray(size)
            got = f.readinto(buf)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; check the path of the {what}.") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a file; give the path of the {what}.") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}; check the path of the {what}.") from None
    if got != size:
        raise InputError(f"{path} changed while it was being read; read it again when it is complete.")
    return buf


# The readers and writers import atomic_write and _read_input from this package, so they are
# imported only once those exist.
from .expt import experiments_from_dict, experiments_to_dict, read_experiments, write_experiments  # noqa: E402
from .refl import read_reflections, write_reflections  # noqa: E402
