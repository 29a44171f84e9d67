"""/tmp's size where no tmpfs enforces it: files whose writes count against the function's ephemeral storage.

`open()` of a file in /tmp for writing (through `fsguard.py`) returns the layers `io.open` builds
(text on buffer on raw file), on a raw file that asks before each write whether the bytes still fit
and fails as a full disk does, `[Errno 28] No space left on device`:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from typing import Any


class _QuotaFile(io.FileIO):
    """A file in /tmp whose writes count against the function's ephemeral storage."""

    reserve: Callable[[int], bool]

    def write(self, data: Any) -> int:
        count = memoryview(data).nbytes
        if "a" in self.mode:
            growth = count
        else:
            growth = max(0, self.tell() + count - os.fstat(self.fileno()).st_size)
        if growth and not self.reserve(growth):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def quota_open(
    reserve: Callable[[int], bool],
    file: Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Callable[[str, int], int] | None = None,
) -> Any:
    """What open() returns, built on a _QuotaFile: the same layers io.open builds on a FileIO."""
    raw = _QuotaFile(file, "".join(flag for flag in mode if flag in "rwxa+"), closefd, opener=opener)
    raw.reserve = reserve  # type: ignore[method-assign]
    binary = "b" in mode
    line_buffering = buffering == 1 or (buffering < 0 and raw.isatty())
    if buffering in (1, -1):
        buffering = io.DEFAULT_BUFFER_SIZE
    if buffering == 0:
        if binary:
            return raw
        raise ValueError("can't have unbuffered text I/O")
    buffer: io.BufferedIOBase
    if "+" in mode:
        buffer = io.BufferedRandom(raw, buffering)
    elif any(flag in mode for flag in "wxa"):
        buffer = io.BufferedWriter(raw, buffering)
    else:
        buffer = io.BufferedReader(raw, buffering)
    if binary:
        return buffer
    text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering)  # type: ignore[arg-type]
    text.mode = mode  # type: ignore[misc]
    return text
