"""A model file merge or export cannot open, said as the file and what to do, not as a traceback.

It happens when the model was saved by another user: ``save_pretrained`` writes safetensors with mode 0600,
so weights a run made under ``sudo`` or in a root container are unreadable to the user who then exports
them. Outputs are checked before writing (core/atomic.py); this covers what the steps read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ftwiz.core.errors import FtwizError, Location


def permission_error(exc: PermissionError) -> FtwizError:
    """The FtwizError for ``exc``: its file, that file's owner and mode where they can be read, and the fix."""
    name = exc.filename or "a file of the model"
    detail = ""
    with contextlib.suppress(OSError, KeyError, ImportError):
        import pwd

        info = os.stat(name)
        owner = pwd.getpwuid(info.st_uid).pw_name
        me = pwd.getpwuid(os.geteuid()).pw_name
        detail = f" (it belongs to {owner} with mode {info.st_mode & 0o777:04o}; ftwiz runs as {me})"
    folder = Path(name).parent
    return FtwizError(f"permission denied: ftwiz cannot open it{detail}", where=Location(file=name),
                      fix=f"make the files readable to you (e.g. `sudo chmod -R a+rX {folder}`), or run ftwiz as "
                          "the user who saved them")


@contextlib.contextmanager
def named_permission_errors() -> Iterator[None]:
    """Turn a PermissionError raised inside into :func:`permission_error`'s FtwizError."""
    try:
        yield
    except PermissionError as exc:
        raise permission_error(exc) from None
