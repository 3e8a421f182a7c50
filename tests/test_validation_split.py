import pandas as pd

from Utilities.Validation_split import (
    all_image_names,
    held_out_counts,
    load_or_write_split,
    make_split,
    move_test_images,
    names_in,
    split_by_label,
    undo_test_split,
)


def test_split_is_stratified_and_complete(neu_like):
    split = make_split(all_image_names(neu_like), test_per_class=1, val_per_class=1, seed=3)
    assert len(split) == 24
    counts = split.groupby(["class", "split"]).size().unstack()
    assert (counts["test"] == 1).all() and (counts["val"] == 1).all() and (counts["train"] == 2).all()
    assert split.equals(make_split(all_image_names(neu_like), 1, 1, seed=3))


def test_move_is_idempotent_and_can_be_undone(neu_like):
    split = make_split(all_image_names(neu_like), test_per_class=1, val_per_class=1, seed=3)
    assert move_test_images(split, neu_like) == 12  # 6 images and their 6 XML files
    assert move_test_images(split, neu_like) == 0
    assert held_out_counts(neu_like).tolist() == [1] * 6
    assert len(list((neu_like / "IMAGES").glob("*.jpg"))) == 18
    test_images = set(names_in(split, "test"))
    assert {p.name for p in (neu_like / "Validation_Images").glob("*.jpg")} == test_images
    assert undo_test_split(neu_like) == 12
    assert len(list((neu_like / "IMAGES").glob("*.jpg"))) == 24
    assert len(list((neu_like / "ANNOTATIONS").glob("*.xml"))) == 24


def test_a_split_is_written_once_then_read(tmp_path):
    made = []

    def make():
        made.append(1)
        return pd.DataFrame({"image": ["a.jpg", "b.jpg"], "class": ["x", "y"], "split": ["train", "test"]})

    first = load_or_write_split(tmp_path / "splits" / "set.csv", make)
    again = load_or_write_split(tmp_path / "splits" / "set.csv", make)
    assert made == [1] and first.equals(again) and list(again["split"]) == ["train", "test"]


def test_cross_validation_folds_cover_train_and_val_once_and_never_touch_test():
    from Utilities.Validation_split import cross_validation_splits

    split = pd.DataFrame({"image": [f"{i}.jpg" for i in range(23)], "class": "crack",
                          "split": ["test"] * 5 + ["val"] * 3 + ["train"] * 15})
    folds = cross_validation_splits(split, 5, seed=0)
    assert len(folds) == 5
    val_sets = [set(names_in(fold, "val")) for fold in folds]
    assert set().union(*val_sets) == set(split.loc[split["split"] != "test", "image"])
    assert sum(len(v) for v in val_sets) == 18 and all(3 <= len(v) <= 4 for v in val_sets)
    assert all(names_in(fold, "test") == names_in(split, "test") for fold in folds)
    assert [names_in(f, "val") for f in cross_validation_splits(split, 5, seed=0)] == [names_in(f, "val") for f in folds]


def test_labels_of_a_single_image_are_pooled_rather_than_refused():
    names = [f"image{i:02d}" for i in range(40)]
    labels = ["scratch"] * 20 + ["dent"] * 17 + ["crack", "hole"] + [""]  # "": the one defect-free image
    split = split_by_label(names, labels, 0.2, 0.15, seed=0)
    assert len(split) == 40 and set(split["split"]) == {"train", "val", "test"}
    counts = split.groupby(["class", "split"]).size()
    assert counts["scratch", "test"] == 4 and counts["dent", "test"] in (3, 4)  # the others still stratified
    assert list(split["class"]) == labels  # the labels themselves are kept
    assert split.equals(split_by_label(names, labels, 0.2, 0.15, seed=0))
