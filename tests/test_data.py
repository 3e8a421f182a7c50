import pandas as pd
import pytest
import torch

from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import SegmentationDataset, make_loaders
from Utilities.Formats import VocSource
from Utilities.Images import read_image
from Utilities.Transforms import eval_transforms
from Utilities.Validation_split import all_image_names, make_split, stratified_split


def test_stratified_split_is_seeded_and_balanced():
    table = pd.DataFrame({"image": [f"{c}_{i}" for c in "abc" for i in range(10)], "class": [c for c in "abc" for _ in range(10)]})
    rest, held = stratified_split(table, 3, seed=1)
    assert held["class"].value_counts().to_dict() == {"a": 3, "b": 3, "c": 3}
    assert len(rest) == 21 and not set(rest.index) & set(held.index)
    assert list(stratified_split(table, 3, seed=1)[1].index) == list(held.index)
    assert list(stratified_split(table, 3, seed=2)[1].index) != list(held.index)
    _, held_fraction = stratified_split(table, 0.2, seed=1)
    assert held_fraction["class"].value_counts().to_dict() == {"a": 2, "b": 2, "c": 2}


def test_dataset_items_and_cache_agree(neu_like):
    source = VocSource(neu_like)
    samples = source.samples()[:3]
    transform = eval_transforms(64, (0.5,) * 3, (0.25,) * 3)
    cached = SegmentationDataset(source, samples, transform, cache_in_ram=True)
    lazy = SegmentationDataset(source, samples, transform, cache_in_ram=False)
    image, mask = cached[1]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert mask.shape == (6, 64, 64) and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert mask.sum() > 0
    torch.testing.assert_close(lazy[1][0], image)
    torch.testing.assert_close(lazy[1][1], mask)


def test_unreadable_image_is_named(tmp_path):
    broken = tmp_path / "crazing_1.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="crazing_1.jpg"):
        read_image(broken)


def test_reduced_decoding_keeps_the_longer_side_at_least_as_asked_in_at_most_two_decodes(tmp_path, monkeypatch):
    import cv2
    import numpy as np

    from Utilities.Images import decode_reduced

    gradient = np.linspace(0, 255, 1600, dtype=np.uint8)[None, :, None].repeat(1200, 0).repeat(3, 2)
    cv2.imwrite(str(tmp_path / "large.jpg"), gradient)
    cv2.imwrite(str(tmp_path / "small.png"), gradient[:200, :300])
    large = decode_reduced(tmp_path / "large.jpg", 192)
    assert large.shape == (150, 200, 3)  # 1/8: the longest scale-down that keeps 192 px
    assert abs(int(large[:, -1].mean()) - 255) < 8 and int(large[:, 0].mean()) < 8  # the picture itself, scaled
    assert decode_reduced(tmp_path / "large.jpg", 400).shape == (300, 400, 3)  # 1/4
    assert decode_reduced(tmp_path / "large.jpg", 401).shape == (600, 800, 3)  # 1/2
    decodes = []
    monkeypatch.setattr(cv2, "imdecode", lambda data, flag, decode=cv2.imdecode: decodes.append(flag) or decode(data, flag))
    assert decode_reduced(tmp_path / "small.png", 192).shape == (200, 300, 3)  # whole: half would be too small
    assert decodes == [cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_COLOR]  # the 1/8 scale told the size
    cv2.imwrite(str(tmp_path / "odd.jpg"), gradient[:, :1593])  # 1/8: 200 px, so 1/4 looks enough but gives 399
    assert decode_reduced(tmp_path / "odd.jpg", 400).shape == (600, 797, 3)  # 1/2
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "large.jpg").read_bytes()[:5000])
    with pytest.raises(ValueError, match="cut.jpg: truncated JPEG"):
        decode_reduced(tmp_path / "cut.jpg", 192)


def test_loaders_follow_the_split_file(neu_like):
    split = make_split(all_image_names(neu_like), test_per_class=1, val_per_class=1, seed=0)
    (neu_like / "splits").mkdir()
    split.to_csv(neu_like / "splits" / "NEU-DET.csv", index=False)
    config = TrainConfig(root=neu_like, image_size=32, batch_size=4)
    train, val = make_loaders(config)
    assert len(train.dataset) == 12 and len(val.dataset) == 6
    images, masks = next(iter(train))
    assert images.shape == (4, 3, 32, 32) and masks.shape == (4, 6, 32, 32)


def test_missing_split_file_says_what_to_run(neu_like):
    with pytest.raises(FileNotFoundError, match="python -m Utilities.Validation_split --data-format voc"):
        make_loaders(TrainConfig(root=neu_like))
