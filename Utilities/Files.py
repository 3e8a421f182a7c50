"""Files the project writes: whole or not at all (``atomic_write``), and where its per-user cache lives."""

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


def user_cache_dir() -> Path:
    """Where the project keeps what it makes once per user and machine (converted encoder weights, measured
    precision choices): ``$DEFECT_SEG_CACHE``, else ``~/.cache/defect-seg`` (``$XDG_CACHE_HOME`` respected)."""
    if os.environ.get("DEFECT_SEG_CACHE"):
        return Path(os.environ["DEFECT_SEG_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "defect-seg"
