"""Writing output files safely: a reader never sees a half-written file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic_lines(path: Path, chunks: Iterable[bytes]) -> int:
    """Stream ``chunks`` into ``path`` through a temporary file in the same folder, then rename.

    The file gets the usual permissions (0666 less the umask), not the temporary file's 0600.
    Returns the number of chunks written.
    """
    n = 0
    with atomic_file(path) as f:
        for chunk in chunks:
            f.write(chunk)
            n += 1
    return n


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` whole when the block ends without an exception (see
    :func:`write_atomic_lines`), or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic_lines`)."""
    write_atomic_lines(path, [data.encode("utf-8") if isinstance(data, str) else data])
