"""Writing a file so that a kill at any moment leaves the old file or the new one, whole, never half of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """``write`` the file's content to a hidden ``.<name>.<pid>.partial`` beside ``path``, then rename it to ``path``
    (one process's partial file never meets another's; ``Predict_folder`` clears a killed run's leftovers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
