"""Put a NEU-DET style data set into the project's ``IMAGES/`` and ``ANNOTATIONS/``.

The source may be a folder, a ``.zip``/``.tar``/``.tar.gz`` archive, or a URL
of one. Every ``*.jpg`` found anywhere below it goes to ``IMAGES/`` and every
``*.xml`` to ``ANNOTATIONS/`` (so archives already split into train and
validation folders are merged). Files are copied, never linked, because the
validation split later moves them. Images already moved to
``Validation_Images/`` are not copied again.

Other formats (see ``Utilities.Formats``) are copied as they are laid out,
into ``data/<name>/`` by default, and checked the same way; their test
split is a file, so nothing is moved later.

Usage::

    python -m Utilities.Setup_data --source ../shared/datasets/NEU-DET
    python -m Utilities.Setup_data --source https://example.org/NEU-DET.zip
    python -m Utilities.Setup_data --format magnetic_tile --source ../shared/datasets/Magnetic-Tile
"""

from __future__ import annotations

import argparse
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from Utilities.Extract_masks import NEU_DET_CLASSES
from Utilities.Formats import FORMATS, VocSource, open_source
from Utilities.Validate_data import IMAGE_SUFFIXES, DataReport


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
        raise FileNotFoundError(f"{path}: data source not found")
    unpacked = workdir / "unpacked"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            archive.extractall(unpacked)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            archive.extractall(unpacked, filter="data")
    else:
        raise ValueError(f"{path}: neither a folder nor a zip or tar archive")
    return unpacked


def _files(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden ones left out, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _copy_if_changed(path: Path, target: Path) -> bool:
    """Copy (never link) ``path`` to ``target`` unless a file of the same size is there; True if copied."""
    if target.exists() and target.stat().st_size == path.stat().st_size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return True


def setup_data(
    source: str | Path, root: str | Path = ".", classes: tuple[str, ...] = NEU_DET_CLASSES
) -> tuple[int, DataReport]:
    """Copy a data set into ``<root>/IMAGES`` and ``<root>/ANNOTATIONS`` and check it.

    Returns:
        The number of files copied and the check's report.

    Raises:
        DataError: listing every problem found, after copying.
    """
    root = Path(root)
    images_dir, annotations_dir = root / "IMAGES", root / "ANNOTATIONS"
    held_images, held_annotations = root / "Validation_Images", root / "Validation_Annotations"
    for folder in (images_dir, annotations_dir):
        folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = fetch(str(source), Path(tmp))
        copied = 0
        for path in tqdm(_files(folder), desc="copying", leave=False):
            is_image, is_xml = path.suffix.lower() in IMAGE_SUFFIXES, path.suffix.lower() == ".xml"
            if not (is_image or is_xml):
                continue
            target_dir, held_dir = (images_dir, held_images) if is_image else (annotations_dir, held_annotations)
            if not (held_dir / path.name).exists():
                copied += _copy_if_changed(path, target_dir / path.name)
    report = VocSource(root, classes).check()
    return copied, report.raise_if_errors()


def setup_dataset(format: str, source: str | Path, destination: str | Path) -> tuple[int, DataReport]:
    """Copy a data set of another format into ``destination``, keeping its layout, and check it.

    Returns:
        The number of files copied and the check's report.

    Raises:
        DataError: listing every problem found, after copying.
    """
    destination = Path(destination)
    with tempfile.TemporaryDirectory() as tmp:
        folder = fetch(str(source), Path(tmp))
        while len(entries := [p for p in folder.iterdir() if not p.name.startswith(".")]) == 1 and entries[0].is_dir():
            folder = entries[0]  # an archive's single top folder (e.g. "CrackForest-master/") is not part of the layout
        copied = sum(_copy_if_changed(path, destination / path.relative_to(folder))
                     for path in tqdm(_files(folder), desc="copying", leave=False))
    return copied, open_source(format, destination).check().raise_if_errors()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="folder, archive or URL holding the data set")
    parser.add_argument("--format", default="voc", choices=list(FORMATS), help="data set layout (default: voc)")
    parser.add_argument("--root", default=".", help="project folder (default: current folder)")
    parser.add_argument("--dest", help="where other formats go (default: <root>/data/<source folder name>)")
    args = parser.parse_args()
    if args.format == "voc":
        copied, report = setup_data(args.source, args.root)
    else:
        destination = args.dest or Path(args.root) / "data" / Path(args.source.split("?")[0]).name.split(".")[0]
        copied, report = setup_dataset(args.format, args.source, destination)
    print(f"copied {copied} files; {report}")


if __name__ == "__main__":
    main()
