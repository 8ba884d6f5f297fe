# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Files Nova asks to place in an instance, as a tar for the engine (pure).

Paths are resolved inside the container's root: absolute or relative, a path
may not climb out with ``..`` nor hold a control character, and the archive
holds only regular files and the directories leading to them, so nothing can
be linked to the host.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import unicodedata
from collections.abc import Iterable

from nova import exception as nova_exception
from nova.i18n import _

AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"
#: Linux's limits on a path and on one of its names, in bytes.
PATH_MAX = 4096
NAME_MAX = 255
#: Control characters (C0, DEL, C1) and lone surrogates, which no file name
#: needs and which the tar or the engine would cut or mangle.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})


def container_path(path: str) -> str:
    """``path`` relative to the container root; refuses escapes.

    The engine ends a name at its first NUL, so ``"/a/..\\x00/b"`` would
    arrive as ``/a/..`` though none of its components is ``..``: control
    characters are refused first, and the checks hold for the normal form.
    """
    problem = _path_problem(path)
    if problem:
        raise nova_exception.InvalidInput(
            reason=_("cannot inject a file at %(path)r: %(problem)s")
            % {"path": path, "problem": problem}
        )
    return _normal(path).lstrip("/")


def _normal(path: str) -> str:
    # Without lstrip, "//" would stay "//": POSIX lets two leading slashes
    # mean something else than one.
    return posixpath.normpath("/" + path.lstrip("/"))


def _path_problem(path: str) -> str | None:
    """Why ``path`` cannot name an injected file, or None if it can."""
    parts = path.split("/")
    normal = _normal(path)
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in path):
        problem = _("it holds a control character")
    elif ".." in parts or ".." in normal.split("/"):
        problem = _("it climbs out with '..'")
    elif normal == "/":
        problem = _("it names no file")
    elif parts[-1] in ("", "."):
        problem = _("it names a directory")
    elif _too_long(normal):
        problem = _("it is too long")
    else:
        problem = None
    return problem


def _too_long(normal: str) -> bool:
    encoded = os.fsencode(normal)
    return len(encoded) >= PATH_MAX or any(
        len(name) > NAME_MAX for name in encoded.split(b"/")
    )


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
