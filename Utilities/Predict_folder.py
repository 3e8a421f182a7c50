"""Masks for a folder of images, as a production line runs it: every readable image predicted, every unreadable
one named in the report and skipped, outputs written atomically, a killed run resumed where it stopped, images
above the tile size streamed (``Large_images``). The command is ``python -m Utilities.Inference``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd
import pyvips
from tqdm.auto import tqdm

from Utilities.Coco_export import write_coco_predictions
from Utilities.Errors import MissingFile
from Utilities.Files import atomic_write
from Utilities.Images import IMAGE_SUFFIXES, read_image
from Utilities.Large_images import header_size, overlay_jpeg, predict_large_image
from Utilities.Overlay import tint
from Utilities.Postprocess import defect_present, label_map
from Utilities.Review_page import write_review_page

if TYPE_CHECKING:
    from Utilities.Inference import Predictor


def image_files(folder_or_file: str | Path | list) -> list[Path]:
    """The image files of a folder (sorted), the one file given, or the list of files given."""
    if isinstance(folder_or_file, (list, tuple)):
        return [Path(p) for p in folder_or_file]
    path = Path(folder_or_file)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MissingFile(f"{path}: no such image file or folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MissingFile(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


REPORT = "predictions.csv"
EXIT_SOME_FAILED = 3  # the command's exit status when any input could not be predicted (0: all predicted)


def output_paths(out: Path, image: Path) -> tuple[Path, Path]:
    """Where an image's mask and overlay go."""
    return out / f"{image.stem}_mask.png", out / f"{image.stem}_overlay.jpg"


def encode(suffix: str, image: np.ndarray) -> bytes:
    """``image`` as the bytes of an image file of type ``suffix``."""
    encoded, buffer = cv2.imencode(suffix, image)
    if not encoded:
        raise ValueError(f"OpenCV cannot encode a {image.shape} {image.dtype} image as {suffix}")
    return buffer.tobytes()


def _previous_report(out: Path, overwrite: bool, columns: list[str]) -> dict[str, dict]:
    """Rows of an earlier run whose outputs are all there, by file; the report rewritten without a torn last line,
    with ``columns`` (a report from an older version gains the new ones, empty)."""
    report = out / REPORT
    if overwrite:
        report.unlink(missing_ok=True)  # the new run's rows are appended to a fresh report
    if overwrite or not report.exists():
        return {}
    table = pd.read_csv(report, on_bad_lines="skip", dtype={"file": str, "status": str, "reason": str})
    table = table[table["status"].isin(["ok", "failed"])]  # a row cut short by a kill reads as NaN here
    kept = {row["file"]: row for row in table.to_dict("records")
            if row["status"] == "failed" or all(p.exists() for p in output_paths(out, Path(row["file"])))}
    atomic_write(report, lambda partial: pd.DataFrame(list(kept.values()), columns=columns).to_csv(partial, index=False))
    return {file: row for file, row in kept.items() if row["status"] == "ok"}


def _predict_row(predictor: Predictor, path: Path, picture: np.ndarray, probabilities: np.ndarray,
                 image_probabilities: np.ndarray, out: Path) -> dict:
    masks = predictor.masks(probabilities, image_probabilities)
    labels = label_map(masks, probabilities)
    areas = np.bincount(labels.ravel(), minlength=len(predictor.classes) + 1)[1:]
    tinted = encode(".jpg", cv2.cvtColor(tint(picture, labels), cv2.COLOR_RGB2BGR))
    return _write_outputs(out, path, labels, tinted, areas, probabilities.max(axis=(1, 2)), defect_present(masks),
                          predictor.classes)


def _predict_large_row(predictor: Predictor, path: Path, out: Path) -> dict:
    """``_predict_row`` for an image file above the tile size, streamed by ``Large_images``."""
    result = predict_large_image(predictor, path, out / f".{path.stem}_probabilities.partial")
    return _write_outputs(out, path, result.labels, overlay_jpeg(path, result.labels), result.areas,
                          result.max_probability, result.defect, predictor.classes)


def _write_outputs(out: Path, path: Path, labels: np.ndarray, overlay_bytes: bytes, areas: np.ndarray,
                   max_probability: np.ndarray, defect: bool, classes: tuple[str, ...]) -> dict:
    """Write an image's overlay and label mask; its report row."""
    mask_path, overlay_path = output_paths(out, path)
    mask_bytes = encode(".png", labels)
    atomic_write(overlay_path, lambda partial: partial.write_bytes(overlay_bytes))
    atomic_write(mask_path, lambda partial: partial.write_bytes(mask_bytes))  # last: its presence says the image is done
    row = {"file": str(path), "status": "ok", "reason": "", "height": labels.shape[0], "width": labels.shape[1],
           "defect": int(defect)}
    for k, name in enumerate(classes):
        row[f"area_{name}"] = int(areas[k])
        row[f"max_probability_{name}"] = round(float(max_probability[k]), 4)
    return row


def predict_folder(
    predictor: Predictor,
    images: str | Path | list,
    out: str | Path,
    batch_size: int = 16,
    overwrite: bool = False,
    coco: bool = False,
) -> pd.DataFrame:
    """Write ``<stem>_mask.png`` and ``<stem>_overlay.jpg`` for every image of a folder (or a file, or a list
    of files), the report ``predictions.csv`` and the page to review them, ``report.html``
    (``Utilities.Review_page``), going on past files that cannot be read; with ``coco``, also the predicted
    masks as COCO instances in ``predictions_coco.json`` (``Utilities.Coco_export``), image file names
    relative to the folder predicted.

    Unreadable, empty or truncated files are skipped, named with the reason on
    the console and in the report. Outputs are written atomically, so a run
    started again skips the images already done (unless ``overwrite``) and
    continues where an interrupted one stopped.

    Returns:
        The report, one row per input in input order: ``file``, ``status`` (``ok``
        or ``failed``), ``reason``, ``height``, ``width``, ``defect`` (1 when the
        post-processed masks hold any defect: the image-level decision), and per class
        ``area_<class>`` (predicted pixels) and ``max_probability_<class>``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.glob(".*.partial"):  # a killed run's unfinished writes
        leftover.unlink()
    files = image_files(images)
    done = _previous_report(out, overwrite, _report_columns(predictor.classes))
    rows = {str(p): done[str(p)] for p in files if str(p) in done}
    todo = [p for p in files if str(p) not in rows]
    for start in tqdm(range(0, len(todo), batch_size), desc="predicting", unit="batch"):
        batch, new_rows = _read_batch(predictor, todo[start : start + batch_size], out)
        pictures = [picture for _, picture in batch]
        for (path, picture), (probabilities, image) in zip(batch, predictor.predict_with_image(pictures) if pictures else []):
            new_rows.append(_predict_row(predictor, path, picture, probabilities, image, out))
        _append_rows(out / REPORT, new_rows, predictor.classes)
        rows |= {row["file"]: row for row in new_rows}
    report = pd.DataFrame([rows[str(p)] for p in files], columns=_report_columns(predictor.classes))
    atomic_write(out / REPORT, lambda partial: report.to_csv(partial, index=False))
    write_review_page(report, predictor.classes, out, lambda image: output_paths(out, image))
    if coco:
        write_coco_predictions(_coco_images(report, predictor.classes, out, images), predictor.classes, out)
    return report


def _coco_images(report: pd.DataFrame, classes: tuple[str, ...], out: Path, images) -> list[dict]:
    """The predicted images as ``Coco_export`` takes them: file names relative to the folder predicted."""
    folder = Path(images) if not isinstance(images, (list, tuple)) and Path(images).is_dir() else None
    return [{"file_name": Path(row["file"]).relative_to(folder).as_posix() if folder else Path(row["file"]).name,
             "mask": output_paths(out, Path(row["file"]))[0],
             "scores": [row[f"max_probability_{name}"] for name in classes]}
            for row in report[report["status"] == "ok"].to_dict("records")]


def _read_batch(predictor: Predictor, paths: list[Path], out: Path) -> tuple[list[tuple[Path, np.ndarray]], list[dict]]:
    """The decoded images of ``paths``, and the rows of those already finished: unreadable ones, and images above
    the tile size, which are streamed to their outputs here rather than decoded whole."""
    batch, rows = [], []
    for path in paths:
        size = header_size(path) if predictor.config.full_resolution else None
        if size and predictor.windowed(*size):
            try:
                rows.append(_predict_large_row(predictor, path, out))  # libvips decodes it while predicting
            except pyvips.Error as problem:
                rows.append(_failed(path, problem))
            continue
        try:
            batch.append((path, read_image(path)))
        except ValueError as problem:
            rows.append(_failed(path, problem))
    return batch, rows


def _failed(path: Path, problem: Exception) -> dict:
    """The report row of a file that could not be decoded, the reason also on the console."""
    reason = str(problem).removeprefix(f"{path}: ").strip().replace("\n", " ")
    tqdm.write(f"skipped {path}: {reason}")
    return {"file": str(path), "status": "failed", "reason": reason}


def _report_columns(classes: tuple[str, ...]) -> list[str]:
    return ["file", "status", "reason", "height", "width", "defect", *[f"{kind}_{name}" for name in classes
                                                            for kind in ("area", "max_probability")]]


def _append_rows(report: Path, rows: list[dict], classes: tuple[str, ...]) -> None:
    """Add a batch's rows to the report as they are done, so a killed run's finished images stay reported."""
    pd.DataFrame(rows, columns=_report_columns(classes)).to_csv(report, mode="a", header=not report.exists(), index=False)
