"""Files Nova asks to place in an instance, as a tar for the engine (pure).

Paths are resolved inside the container's root: absolute or relative, a path
may not climb out with ``..``, and the archive holds only regular files and
the directories leading to them, so nothing can be linked to the host.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterable

from nova import exception as nova_exception
from nova.i18n import _

AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


def container_path(path: str) -> str:
    """``path`` relative to the container root; refuses escapes."""
    normal = posixpath.normpath("/" + path.lstrip("/"))
    if ".." in path.split("/") or normal == "/":
        raise nova_exception.InvalidInput(reason=_("cannot inject a file at %r") % path)
    return normal.lstrip("/")


def files_archive(
    injected_files: Iterable[tuple[str, bytes | str]], ssh_key: str | None = None
) -> bytes | None:
    """A tar of the files to put at the container's ``/``, or None if none.

    Parent directories are not in the archive: the engine creates missing
    ones, and an entry for an existing one would reset its mode (``/tmp``
    would lose its sticky bit).  ``.ssh`` is the exception, since sshd
    ignores keys in a directory others can write.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in injected_files:
            _add_file(tar, container_path(path), _as_bytes(content), 0o644)
        if ssh_key:
            keys = container_path(AUTHORIZED_KEYS)
            ssh_dir = tarfile.TarInfo(posixpath.dirname(keys))
            ssh_dir.type, ssh_dir.mode = tarfile.DIRTYPE, 0o700
            tar.addfile(ssh_dir)
            _add_file(tar, keys, _as_bytes(ssh_key.strip() + "\n"), 0o600)
        empty = not tar.getmembers()
    return None if empty else buffer.getvalue()


def _add_file(tar: tarfile.TarFile, path: str, content: bytes, mode: int) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode = len(content), mode
    tar.addfile(info, io.BytesIO(content))


def _as_bytes(content: bytes | str) -> bytes:
    return content.encode() if isinstance(content, str) else content
