"""Copy a data set into the project, the way its format wants it, and check it.

The source may be a folder, a ``.zip``/``.tar``/``.tar.gz`` archive, or a URL
of one. Each format (``Utilities.Formats``) says where it goes and how it is
copied (``DataSource.default_destination``, ``DataSource.copy_in``): NEU-DET's
VOC layout goes into the project's ``IMAGES/`` and ``ANNOTATIONS/`` (every
image and ``.xml`` found anywhere below the source, so archives already split
into train and validation folders are merged; images already moved to
``Validation_Images/`` are not copied again), the others keep their layout
in ``data/<name>/``. Files are copied, never linked, because the validation
split may move them later.

Usage::

    python -m Utilities.Setup_data --source ../shared/datasets/NEU-DET
    python -m Utilities.Setup_data --source https://example.org/NEU-DET.zip
    python -m Utilities.Setup_data --format magnetic_tile --source ../shared/datasets/Magnetic-Tile
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from Utilities.Errors import ConfigError, MissingFile, UnknownName, run_command
from Utilities.Extract_masks import NEU_DET_CLASSES
from Utilities.Formats import FORMATS, open_source
from Utilities.Validate_data import DataReport


def fetch(source: str, workdir: Path) -> Path:
    """A local folder holding the data: ``source`` itself, or a downloaded and unpacked archive."""
    if source.startswith(("http://", "https://")):
        archive = workdir / Path(source.split("?")[0]).name
        with urllib.request.urlopen(source, timeout=60) as response, open(archive, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {archive.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        source = str(archive)
    path = Path(source)
    if path.is_dir():
        return path
    if not path.exists():
        raise MissingFile(f"{path}: data source not found")
    unpacked = workdir / "unpacked"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            archive.extractall(unpacked)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            archive.extractall(unpacked, filter="data")
    else:
        raise ConfigError(f"{path}: neither a folder nor a zip or tar archive")
    return unpacked


def setup_dataset(format: str, source: str | Path, destination: str | Path | None = None, root: str | Path = ".",
                  classes: tuple[str, ...] | None = None) -> tuple[int, DataReport]:
    """Copy a data set into the project the way its format wants it (``DataSource.copy_in``) and check it.

    Args:
        destination: default: the format's (``DataSource.default_destination``: the project folder for
            NEU-DET's VOC layout, ``<root>/data/<source folder name>`` for the others).

    Returns:
        The number of files copied and the check's report.

    Raises:
        DataError: listing every problem found, after copying.
    """
    if format not in FORMATS:
        raise UnknownName(f"unknown data set format {format!r}; known: {', '.join(FORMATS)}")
    reader = FORMATS[format]
    name = Path(str(source).split("?")[0]).name.split(".")[0]
    destination = Path(destination) if destination else reader.default_destination(Path(root), name)
    with tempfile.TemporaryDirectory() as tmp:
        copied = reader.copy_in(fetch(str(source), Path(tmp)), destination)
    return copied, open_source(format, destination, classes).check().raise_if_errors()


def setup_data(source: str | Path, root: str | Path = ".", classes: tuple[str, ...] = NEU_DET_CLASSES) -> tuple[int, DataReport]:
    """``setup_dataset`` for NEU-DET: its images into ``<root>/IMAGES``, its XML into ``<root>/ANNOTATIONS``."""
    return setup_dataset("voc", source, root, classes=classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="folder, archive or URL holding the data set")
    parser.add_argument("--format", default="voc", choices=list(FORMATS), help="data set layout (default: voc)")
    parser.add_argument("--root", default=".", help="project folder (default: current folder)")
    parser.add_argument("--dest", help="where the data set goes (default: the project folder for voc, "
                                       "<root>/data/<source folder name> for the others)")
    args = parser.parse_args()
    copied, report = setup_dataset(args.format, args.source, args.dest, args.root)
    print(f"copied {copied} files; {report}")


if __name__ == "__main__":
    run_command(main)
