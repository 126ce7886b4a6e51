"""Exceptions that carry a message meant for the user (shown without a traceback), and the one-line
message of a full disk."""
from __future__ import annotations

import errno
import io
from typing import Optional

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class UserError(Exception):
    """A problem with the user's input (file, option, config): the message says how to fix it."""


class ConfigError(UserError):
    """An invalid configuration file or override (unknown key, wrong type)."""


def written_path(exc: OSError) -> Optional[str]:
    """The file a failed write was writing: the error's file name, else the innermost open file object
    written in the failing frames (``file.write`` errors carry no name)."""
    if exc.filename:
        return str(exc.filename)
    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str) \
                    and any(m in getattr(value, "mode", "") for m in "wax+"):
                return value.name
    return None


def disk_full_message(exc: BaseException) -> Optional[str]:
    """One line for a write that failed because the disk (or quota) is full, naming the file; else None."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_FULL:
        return None
    path = written_path(exc)
    where = f"writing {path}" if path else "writing"
    return (f"no space left on device while {where} ({exc.strerror}); free some space and run the same "
            f"command again")
