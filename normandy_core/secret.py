"""The project's secret key (SPEC 13): what the history's hashes of values that may be
secret (params, environment variables, the env's settings and credentials, files'
contents) are keyed with, so that a short credential cannot be recovered from a
fingerprint by trying every value.

It is made on first use, as ``<project>/.normandy/secret`` (32 random bytes, mode 0600:
readable by its owner only), and kept: a new key makes every recorded fingerprint
unverifiable (every task runs once more). Two programs making it at once agree on one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from normandy_core.errors import HistoryError, display_path

SECRET_FILE = "secret"
_SIZE = 32

_keys: dict[Path, bytes] = {}


def project_key(state_dir: Path) -> bytes:
    """The key of the project whose state folder (``.normandy``) is ``state_dir``."""
    path = (state_dir / SECRET_FILE).absolute()
    key = _keys.get(path)
    if key is None:
        key = _keys[path] = _read(path) or _make(path)
    return key


def _read(path: Path) -> bytes | None:
    try:
        info = path.stat()
        key = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HistoryError(f"cannot read the project's key {display_path(path)}: {exc}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:  # readable by others: made so again
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    if len(key) != _SIZE:
        raise HistoryError(
            f"the project's key {display_path(path)} is damaged ({len(key)} bytes, not "
            f"{_SIZE}): remove it (every task then runs once more)"
        )
    return key


def _make(path: Path) -> bytes:
    """Write a new key under a temporary name, then link it into place: the first
    program to link wins, and the others read its key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(_SIZE))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError as exc:
        raise HistoryError(f"cannot write the project's key {display_path(path)}: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    key = _read(path)
    assert key is not None
    return key
