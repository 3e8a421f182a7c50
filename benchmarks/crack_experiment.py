"""One CrackForest experiment: train a configuration, choose the threshold on val, score test once.

Appends a row to ``benchmarks/results/crack_experiments.csv``: crack
precision, recall and F1 with a 2-pixel tolerance and strictly, and strict
IoU (``Utilities.Crack_metrics``), on the photos at their own 480x320
resolution, at the threshold with the best tolerant F1 on val; training
minutes and img/s. The defaults are notebook 06's configuration.

Usage::

    python -m benchmarks.crack_experiment --seed 1
    python -m benchmarks.crack_experiment --evaluate Models/cfd_unet_lite0_best.pth --name notebook06
    python -m benchmarks.crack_experiment --epochs 80 --val-only      # a candidate, scored on val only
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # the report is the table, not progress bars


from benchmarks.experiments import describe, experiment_parser, record, train_or_reload  # noqa: E402
from Utilities.Config import TrainConfig  # noqa: E402
from Utilities.Data_Retriever_Seg import source_of, split_table  # noqa: E402
from Utilities.Evaluate import evaluate_cracks  # noqa: E402
from Utilities.Inference import Predictor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "crack_experiments.csv"
COLUMNS = ("precision", "recall", "f1", "strict_precision", "strict_recall", "strict_f1", "strict_iou")


def score_checkpoint(checkpoint: Path, config: TrainConfig, val_only: bool = False, flip_tta: bool = False) -> dict:
    """The val table's best tolerant F1 and its threshold; then (unless ``val_only``) test at that threshold."""
    predictor, source, split = Predictor(checkpoint, flip_tta=flip_tta), source_of(config), split_table(config)
    names = {part: list(split.loc[split["split"] == part, "image"]) for part in ("val", "test")}
    val = evaluate_cracks(predictor, source, names["val"])
    threshold = val.best_threshold()
    row = {"flip_tta": flip_tta, "threshold": threshold, **{f"val_{c}": float(val.table().loc[threshold, c]) for c in COLUMNS}}
    if not val_only:
        test = evaluate_cracks(predictor, source, names["test"], thresholds=(threshold,)).table().loc[threshold]
        row |= {f"test_{c}": float(test[c]) for c in COLUMNS}
    return row


def main() -> None:
    parser = experiment_parser(__doc__.split("\n\n")[0], seed=42, arch="Unet", encoder="tu-tf_efficientnet_lite0",
                               image_size=256, epochs=100)
    parser.add_argument("--flip-tta", action="store_true", help="predict with horizontal and vertical flips too")
    args = parser.parse_args()

    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: TrainConfig(
        root=ROOT, data_format="crackforest", data_root="data/CrackForest", split_file="splits/CrackForest.csv",
        full_resolution=True, monitor="mean_dice", arch=args.arch, encoder=args.encoder, encoder_weights="imagenet",
        image_size=args.image_size, epochs=args.epochs, lr=args.lr, loss=args.loss, seed=args.seed,
        run_name=f"cfdexp_{args.arch.lower()}_{args.encoder}_{args.image_size}_{args.loss}_e{args.epochs}_s{args.seed}",
    ), ROOT)

    record({**describe(args.name, config, history, minutes),
            **score_checkpoint(checkpoint, config, args.val_only, args.flip_tta)}, RESULTS)


if __name__ == "__main__":
    main()
