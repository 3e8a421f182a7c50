"""The arithmetic of the benchmark's rows (the timings themselves are measured by `make bench`, not tested)."""

import math
from dataclasses import replace

import pandas as pd
import pytest

from benchmarks.default_model import SCRATCH_HISTORY, layer_type, minutes_to_quality


def test_minutes_to_quality_sums_epochs_until_val_dice_first_reaches_it(tmp_path):
    history = tmp_path / "run_history.csv"
    pd.DataFrame({"epoch": [1, 2, 3, 4], "val_dice": [0.5, 0.81, 0.79, 0.9], "seconds": [60, 90, 30, 30]}).to_csv(history)
    assert minutes_to_quality(history, 0.80) == 2.5
    assert math.isnan(minutes_to_quality(history, 0.95))


def test_layer_types_tell_depthwise_backward_from_other_convolutions():
    assert layer_type("aten::convolution_backward", [[8, 96, 64, 64], [8, 96, 64, 64], [96, 1, 3, 3]]) == \
        "depthwise convolution backward"
    assert layer_type("aten::convolution_backward", [[8, 96, 64, 64], [8, 32, 64, 64], [96, 32, 1, 1]]) == \
        "other convolution backward"
    assert layer_type("aten::mkldnn_convolution", []) == "convolution forward"
    assert layer_type("aten::native_batch_norm_backward", []) == "normalisation"
    assert layer_type("aten::_fused_adamw_", []) == "optimiser"
    assert layer_type("aten::sigmoid_backward", []) == "other backward"


def test_the_from_scratch_history_holds_every_epoch_of_its_run():
    """Read back from notebook 03's committed outputs of 2026-11-22: 42 epochs, val Dice 0.80 first at epoch 36."""
    history = pd.read_csv(SCRATCH_HISTORY)
    assert list(history["epoch"]) == list(range(1, 43))
    assert history.index[history["val_dice"] >= 0.80][0] == 35
    assert 19 < minutes_to_quality(SCRATCH_HISTORY) < 21


def _tiny_crackforest(tmp_path, held_out: list[str], **settings):
    """Generated CrackForest photos, split with the first ones ``held_out`` (e.g. test, val) and the rest train,
    and a crackforest recipe small enough to train in seconds: the photos' names and the config."""
    from test_formats import make_crackforest

    from Utilities.Config import TrainConfig
    from Utilities.Formats import open_source

    make_crackforest(tmp_path / "data")
    names = [s.name for s in open_source("crackforest", tmp_path / "data").samples()]
    (tmp_path / "splits").mkdir()
    pd.DataFrame({"image": names, "class": "crack", "split": held_out + ["train"] * (len(names) - len(held_out))}
                 ).to_csv(tmp_path / "splits" / "data.csv", index=False)
    return names, TrainConfig.from_recipe("crackforest", root=tmp_path, data_root="data", image_size=32, batch_size=2,
                                          epochs=1, encoder="tu-tf_efficientnet_lite0", encoder_weights=None, **settings)


def test_crack_cross_validation_trains_a_run_per_fold_and_never_predicts_test(tmp_path, monkeypatch):
    from benchmarks import crack_experiment

    names, base = _tiny_crackforest(tmp_path, ["test"], run_name="cv")
    scored = []
    monkeypatch.setattr(crack_experiment, "score_split", lambda p, s, n: _scored(scored, p, s, n))
    table = crack_experiment.cross_validate(base, 2, "tiny", tmp_path / "cv.csv")
    assert list(table["fold"]) == ["1", "2", "mean"] and not any(c.startswith("test_") for c in table.columns)
    assert sorted(n for fold in scored for n in fold) == sorted(names[1:])  # every train photo scored once, test never
    assert len(pd.read_csv(tmp_path / "cv.csv")) == 3

    monkeypatch.setattr(crack_experiment, "train", _no_training)  # run again: the recorded folds are taken
    again = crack_experiment.cross_validate(base, 2, "tiny", tmp_path / "cv.csv")
    assert list(again["val_f1"]) == pytest.approx(list(table["val_f1"]), abs=1e-4)  # as the CSV holds them
    assert list(pd.read_csv(tmp_path / "cv.csv", dtype={"fold": str})["fold"]) == ["1", "2", "mean", "mean"]
    with pytest.raises(AssertionError, match="trained"):  # another schedule is another run
        crack_experiment.cross_validate(replace(base, epochs=2), 2, "tiny", tmp_path / "cv.csv")


def test_the_final_test_trains_a_run_per_seed_and_reports_their_mean_and_spread(tmp_path, monkeypatch):
    from benchmarks import crack_experiment

    names, base = _tiny_crackforest(tmp_path, ["test", "val"], run_name="final_s42")
    scored = []
    monkeypatch.setattr(crack_experiment, "score_split", lambda p, s, n: _scored(scored, p, s, n))
    table = crack_experiment.score_seeds(base, [1, 2], "tiny", tmp_path / "test.csv")
    assert list(table["seed"]) == [1, 2, "mean"]
    assert [p.name for p in sorted((tmp_path / "Models").glob("*_best.pth"))] == ["final_s1_best.pth", "final_s2_best.pth"]
    assert scored == [[names[1]], [names[0]]] * 2  # per seed: val once (after tuning), then test once
    mean = table.iloc[-1]
    assert mean["test_f1"] == pytest.approx(table["test_f1"][:2].mean())
    assert mean["sd_test_f1"] == pytest.approx(table["test_f1"][:2].std())
    assert len(pd.read_csv(tmp_path / "test.csv")) == 3

    monkeypatch.setattr(crack_experiment, "train", _no_training)  # a later session: seeds 1 and 2 are recorded
    again = crack_experiment.score_seeds(base, [2, 1], "tiny", tmp_path / "test.csv")
    assert list(again["test_f1"][:2]) == pytest.approx(list(table["test_f1"][1::-1]), abs=1e-4)
    with pytest.raises(AssertionError, match="trained"):
        crack_experiment.score_seeds(base, [1, 3], "tiny", tmp_path / "test.csv")


def test_a_refitted_final_test_trains_on_val_too_and_predicts_with_the_setup_cv_chose(tmp_path, monkeypatch):
    from benchmarks import crack_experiment
    from Utilities.Checkpoint import read_checkpoint
    from Utilities.Errors import UserError

    names, base = _tiny_crackforest(tmp_path, ["test", "val"], run_name="final_s42", precision="float32")
    cv = tmp_path / "cv.csv"
    today, before = crack_experiment.LABELS, crack_experiment.OLD_LABELS
    pd.DataFrame({"name": ["cv"] * 5 + ["other"], "fold": ["1", "2", "3", "mean", "4", "1"],
                  "flip_tta": [True, True, False, None, False, False], "threshold": [0.3, 0.5, 0.4, None, 0.9, 0.9],
                  "labels": [today] * 4 + [before, today]}).to_csv(cv)
    setup = crack_experiment.cv_setup("cv", cv)
    assert setup.flip_tta and setup.postprocessing.threshold == (0.4,)  # most folds' flips, the median threshold
    # (fold 4, scored on masks read another way, left out)
    with pytest.raises(UserError, match="no folds recorded under the name 'unknown'"):
        crack_experiment.cv_setup("unknown", cv)

    scored = []
    monkeypatch.setattr(crack_experiment, "score_split", lambda p, s, n: _scored(scored, p, s, n))
    table = crack_experiment.score_seeds(base, [1], "tiny", tmp_path / "test.csv", refit=setup)
    assert scored == [[names[0]]]  # test once; val, trained on, is never scored
    refit_split = pd.read_csv(tmp_path / "Models" / "refit" / "data_train+val.csv")
    assert sorted(refit_split.loc[refit_split["split"] == "train", "image"]) == sorted(names[1:])
    final = read_checkpoint(tmp_path / "Models" / "final_s1_refit_final.pth")
    assert final["inference_setup"]["flip_tta"] and final["inference_setup"]["postprocessing"]["threshold"] == [0.4]
    assert list(table["trained_on"][:1]) == ["train+val"] and table["threshold"][0] == 0.4
    assert table["trained_in"][0] == "float32"  # the precision the Trainer kept in the checkpoint

    monkeypatch.setattr(crack_experiment, "train", _no_training)  # recorded: not trained again
    again = crack_experiment.score_seeds(base, [1], "tiny", tmp_path / "test.csv", refit=setup)
    assert again["test_f1"][0] == pytest.approx(table["test_f1"][0], abs=1e-4)


def test_a_recorded_row_keeps_its_settings_exactly_and_its_measurements_to_four_decimals(tmp_path):
    from benchmarks.experiments import config_columns, has_settings, record
    from Utilities.Config import TrainConfig

    config = TrainConfig(lr=1e-5)
    record({**config_columns(config), "name": "small lr", "val_f1": 0.812345678}, tmp_path / "rows.csv")
    record({**config_columns(TrainConfig(lr=2e-5)), "name": "other lr", "val_f1": 0.5}, tmp_path / "rows.csv")
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert list(has_settings(rows, config)) == [True, False]
    assert rows["val_f1"][0] == 0.8123


def test_decoder_speed_rows_time_each_width_set_against_the_recipe():
    from benchmarks.crack_decoder_speed import WIDTHS, decoder_rows
    from Utilities.Config import TrainConfig

    config = TrainConfig.from_recipe("crackforest", encoder_weights=None, image_size=32, precision="float32")
    rows = decoder_rows(config, calls_per_round=1)
    assert list(rows["decoder"]) == list(WIDTHS) and (rows["img/s"] > 0).all()
    assert rows["against the recipe"].iloc[0] == 1.0
    assert rows["against the recipe"].iloc[1] == pytest.approx(rows["img/s"].iloc[1] / rows["img/s"].iloc[0])


def _no_training(config):
    raise AssertionError(f"{config.run_name} trained again")


def _scored(scored, predictor, source, names):
    from Utilities.Evaluate import score_split

    scored.append(list(names))
    return score_split(predictor, source, names)


def test_the_default_is_compared_with_the_faster_form_round_by_round():
    from benchmarks.default_model import over_the_faster

    # the machine halves its speed in round 2: per round the default is at 0.99, 1.0 and 0.98 of the faster form
    per_round = {"default": [99.0, 50.0, 98.0], "float32": [100.0, 40.0, 100.0], "bfloat16": [90.0, 50.0, 10.0]}
    assert over_the_faster(per_round, "default", ("float32", "bfloat16")) == 0.99


@pytest.mark.parametrize("seeds,message", [("42,one", "--seeds: expected whole numbers separated by commas, not '42,one'"),
                                           ("42,1,42", "--seeds 42,1,42: a seed repeated")])
def test_a_seed_list_that_is_not_distinct_whole_numbers_is_refused_by_name(monkeypatch, capsys, seeds, message):
    from benchmarks import crack_experiment

    monkeypatch.setattr("sys.argv", ["crack_experiment", "--seeds", seeds])
    with pytest.raises(SystemExit):
        crack_experiment.main()
    assert message in capsys.readouterr().err


def test_the_cv_table_pairs_each_candidate_with_the_recipe_on_the_folds_both_finished(tmp_path):
    from benchmarks.crack_cv_table import cv_comparison
    from benchmarks.experiments import config_columns
    from Utilities.Config import TrainConfig

    recipe = {**config_columns(TrainConfig.from_recipe("crackforest")), "epochs": 20, "folds": 3, "train_img_per_s": 2.0}
    rows = [{**recipe, "name": "recipe", "fold": str(k), "val_f1": f1} for k, f1 in enumerate([0.8, 0.7, 0.9], 1)]
    rows += [{**recipe, "name": "recipe", "fold": "mean", "val_f1": 0.5}]  # a mean row is not a fold
    rows += [{**recipe, "name": "lovasz", "loss": "bce_lovasz", "fold": str(k), "val_f1": f1}
             for k, f1 in [(1, 0.60), (1, 0.85), (2, 0.70)]]  # fold 1 run again, then stopped after fold 2
    rows += [{**recipe, "name": "lower lr", "lr": 3e-4, "fold": "1", "val_f1": 0.9}]  # not the recipe
    rows += [{**recipe, "epochs": 100, "name": "recipe, longer", "fold": "1", "val_f1": 0.95}]
    pd.DataFrame(rows).drop(columns=["decoder_channels"]).to_csv(tmp_path / "cv.csv", index=False,
                                                                   float_format="%.4f")  # as an older file was written

    table = cv_comparison(tmp_path / "cv.csv").set_index("candidate")
    assert list(table.index) == ["recipe", "lovasz", "lower lr", "recipe, longer"]
    assert table.loc["recipe", "folds"] == "3 of 3" and table.loc["recipe", "mean F1"] == pytest.approx(0.8)
    assert pd.isna(table.loc["recipe", "paired vs recipe"])
    assert table.loc["lovasz", "folds"] == "2 of 3" and table.loc["lovasz", "fold F1"] == "0.850 0.700"
    assert table.loc["lovasz", "paired vs recipe"] == pytest.approx(0.025)
    assert table.loc["lovasz", "paired sd"] == pytest.approx(pd.Series([0.05, 0.0]).std())
    assert table.loc["lower lr", "paired vs recipe"] == pytest.approx(0.1)
    assert pd.isna(table.loc["recipe, longer", "paired vs recipe"])  # the recipe itself, at 100 epochs


def _crack_photo(speckles: int) -> tuple:
    """A 64x64 probability map with one true crack line at 0.9 and ``speckles`` far 3x3 blobs at 0.9, and its truth."""
    import numpy as np

    probability, truth = np.full((64, 64), 0.05, np.float32), np.zeros((64, 64), np.uint8)
    probability[30:33, 4:60], truth[31, 4:60] = 0.9, 1
    for k in range(speckles):
        probability[4 + 6 * k : 7 + 6 * k, 4:7] = 0.9
    return probability, truth


def test_dropping_small_blobs_is_chosen_per_fold_and_scored_on_each_fold_with_the_others_choice():
    from benchmarks import crack_postprocessing

    folds = {"1": [_crack_photo(4)], "2": [_crack_photo(3)], "3": [_crack_photo(0)]}
    best = pd.concat([crack_postprocessing.best_per_rule(photos).assign(fold=fold) for fold, photos in folds.items()])
    by_rule = best.set_index(["fold", "rule"])
    assert by_rule.loc[("1", "min_area"), "value"] == 16 and by_rule.loc[("1", "min_area"), "f1"] == 1.0
    assert by_rule.loc[("1", "threshold"), "precision"] < 0.85  # the speckles, far from the crack, cost precision
    assert by_rule.loc[("3", "min_area"), "value"] == 0  # nothing to drop: the smallest value of the grid
    held = crack_postprocessing.held_out(best, folds).set_index(["fold", "rule"])
    assert held.loc[("3", "min_area"), "value"] == 16  # folds 1 and 2 chose 16: fold 3 is scored with it
    assert held.loc[("3", "min_area"), "f1"] == 1.0 and held.loc[("2", "min_area"), "value"] == 8  # median of 0, 16
    thinned = crack_postprocessing.score(folds["3"], "thinned", 0.5, 0)
    assert thinned["recall"] == 1.0 and thinned["strict_f1"] > by_rule.loc[("3", "threshold"), "strict_f1"]
