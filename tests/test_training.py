import pickle

import pandas as pd
import pytest
import torch

from Utilities.Checkpoint import load_checkpoint, read_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import make_loaders
from Utilities.Losses import LOSSES, make_loss
from Utilities.Optim import SCHEDULERS, make_scheduler
from Utilities.Resnet_Unet import build_model, model_for
from Utilities.Trainer import fit
from Utilities.Validation_split import all_image_names, make_split


def tiny_run(root, epochs=2, run_name="tiny", **settings):
    split = make_split(all_image_names(root), test_per_class=1, val_per_class=1, seed=0)
    (root / "splits").mkdir(exist_ok=True)
    split.to_csv(root / "splits" / "NEU-DET.csv", index=False)
    config = TrainConfig(root=root, image_size=32, batch_size=4, epochs=epochs, lr=3e-3, run_name=run_name, **settings)
    train_loader, val_loader = make_loaders(config)
    model, used = model_for(config)
    return model, train_loader, val_loader, config, used


def test_fit_writes_history_and_checkpoints(neu_like):
    model, train_loader, val_loader, config, used = tiny_run(neu_like)
    history = fit(model, train_loader, val_loader, config, used)
    assert list(history["epoch"]) == [1, 2]
    assert all(type(m).__module__ != "Utilities.Fast_layers" or type(m).__name__ == "_AddMerge" for m in model.modules())
    pickle.dumps(model)  # the run-time classes of the fast layers are undone: the model pickles (torch.save(model))
    assert {"train_loss", "val_loss", "val_dice", "val_iou", "lr", "seconds", "val_iou_crazing"} <= set(history.columns)
    assert history["train_loss"].notna().all()
    saved = pd.read_csv(neu_like / "Models" / "tiny_history.csv")
    assert len(saved) == 2
    best = read_checkpoint(neu_like / "Models" / "tiny_best.pth")
    assert best["metrics"]["val_dice"] == pytest.approx(history["val_dice"].max())
    assert best["config"]["classes"] == list(config.classes) and best["config"]["image_size"] == 32
    assert best["encoder_weights_used"] == used and "torch" in best["versions"]


def test_checkpoint_rebuilds_the_same_model(neu_like):
    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=1)
    fit(model, train_loader, val_loader, config, used)
    loaded, meta = load_checkpoint(neu_like / "Models" / "tiny_last.pth")
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        # same weights; channels-last vs contiguous kernels differ in the last bits
        torch.testing.assert_close(loaded(images), model.eval()(images), atol=1e-3, rtol=1e-3)
    assert meta["config"]["arch"] == "FPN"  # the default architecture


def test_a_checkpoint_with_a_narrow_attended_decoder_predicts_with_it_and_resumes_only_into_it(neu_like):
    from Utilities.Checkpoint import check_resumable

    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=1, arch="Unet",
                                                             decoder_channels=(32, 32, 16, 16, 16),
                                                             decoder_attention="scse")
    fit(model, train_loader, val_loader, config, used)
    loaded, meta = load_checkpoint(neu_like / "Models" / "tiny_best.pth")
    assert meta["config"]["decoder_channels"] == [32, 32, 16, 16, 16] and meta["config"]["decoder_attention"] == "scse"
    assert loaded.segmentation_head[0].in_channels == 16
    assert any(type(m).__name__ == "SCSEModule" for m in loaded.decoder.modules())
    wider = {**config.to_dict(), "decoder_channels": None}
    with pytest.raises(ValueError, match="decoder_channels: checkpoint"):
        check_resumable(read_checkpoint(neu_like / "Models" / "tiny_last.pth"), wider, "tiny_last.pth")


class InterruptedLoader:
    """Behaves like ``loader`` but raises KeyboardInterrupt (Ctrl-C) when epoch ``stop_at`` starts."""

    def __init__(self, loader, stop_at: int):
        self.loader, self.dataset, self.stop_at, self.epochs = loader, loader.dataset, stop_at, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.epochs += 1
        if self.epochs == self.stop_at:
            raise KeyboardInterrupt
        return iter(self.loader)


def test_interrupt_then_resume_matches_a_straight_run(neu_like):
    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=3, run_name="straight")
    straight = fit(model, train_loader, val_loader, config, used)
    straight_weights = read_checkpoint(neu_like / "Models" / "straight_last.pth")["state_dict"]

    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=3, run_name="stopped")
    partial = fit(model, InterruptedLoader(train_loader, stop_at=2), val_loader, config, used)
    assert len(partial) == 1  # Ctrl-C in epoch 2 returns the finished epoch
    last = neu_like / "Models" / "stopped_last.pth"
    assert len(read_checkpoint(last)["history"]) == 1

    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=3, run_name="stopped")
    resumed = fit(model, train_loader, val_loader, config, used, resume=last)
    assert list(resumed["epoch"]) == [1, 2, 3]
    columns = ["train_loss", "val_loss", "val_dice", "lr"]
    pd.testing.assert_frame_equal(resumed[columns], straight[columns], check_exact=False, rtol=1e-5)
    resumed_weights = read_checkpoint(last)["state_dict"]
    for name, tensor in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-5, atol=1e-6)


def test_crafted_checkpoint_is_refused(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (print, ("this ran on load",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": RunsCode()}, f, protocol=2)
    with pytest.raises(ValueError, match="refused to load"):
        read_checkpoint(path)


def test_resume_into_another_architecture_names_both(neu_like):
    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=1, run_name="fpn")  # the default FPN/tu-tf_efficientnet_lite2
    fit(model, train_loader, val_loader, config, used)
    unet_config = TrainConfig(**{**config.__dict__, "arch": "Unet", "encoder": "resnet34", "run_name": "unet"})
    unet, _ = build_model("Unet", "resnet34", len(config.classes))
    with pytest.raises(ValueError, match="holds FPN/tu-tf_efficientnet_lite2 with 6 classes.*builds Unet/resnet34 with 6 classes"):
        fit(unet, train_loader, val_loader, unet_config, used, resume=neu_like / "Models" / "fpn_last.pth")
    longer = TrainConfig(**{**config.__dict__, "epochs": 5})
    with pytest.raises(ValueError, match="epochs: checkpoint 1, this run 5"):
        fit(model, train_loader, val_loader, longer, used, resume=neu_like / "Models" / "fpn_last.pth")
    with pytest.raises(ValueError, match="not a _last.pth"):
        fit(model, train_loader, val_loader, config, used, resume=neu_like / "Models" / "fpn_best.pth")


def test_major_version_change_warns(neu_like, tmp_path):
    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=1, run_name="old")
    fit(model, train_loader, val_loader, config, used)
    checkpoint = read_checkpoint(neu_like / "Models" / "old_best.pth")
    checkpoint["versions"]["torch"] = "1.13.1"
    torch.save(checkpoint, tmp_path / "old.pth")
    with pytest.warns(UserWarning, match="made with torch 1.13.1"):
        load_checkpoint(tmp_path / "old.pth")


def test_command_line_reads_the_data_set_spec(monkeypatch):
    from Utilities.Train import parse_config

    monkeypatch.setattr("sys.argv", ["train", "--data-format", "magnetic_tile", "--data-root", "data/MT", "--binary", "true",
                                     "--classes", "Blowhole,Crack", "--full-resolution", "true", "--defect-fraction", "0.5",
                                     "--output-prior", "0.01", "--monitor", "mean_dice", "--epochs", "3"])
    config, resume = parse_config()
    assert (config.data_format, config.data_root, config.classes, config.binary) == ("magnetic_tile", "data/MT", ("Blowhole", "Crack"), True)
    assert config.full_resolution and config.defect_fraction == 0.5 and config.output_prior == 0.01
    assert config.channels == ("defect",) and config.epochs == 3 and resume is None
    monkeypatch.setattr("sys.argv", ["train"])
    assert parse_config()[0] == TrainConfig()


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_falls_as_logits_approach_the_truth(name):
    targets = torch.zeros(2, 3, 8, 8)
    targets[:, :, 2:5, 2:5] = 1
    loss = make_loss(name)
    far, near = loss(torch.zeros_like(targets), targets), loss(8 * (2 * targets - 1), targets)
    assert torch.isfinite(far) and near < far


def test_unknown_monitor_is_refused_before_training(neu_like):
    from Utilities.Meter import check_monitor

    assert check_monitor("mean_dice", ("a", "b")) == "mean_dice" and check_monitor("ap_b", ("a", "b")) == "ap_b"
    with pytest.raises(KeyError, match="known validation scores: dice"):
        check_monitor("val_dice", ("a",))
    assert check_monitor("loss", ("a",)) == "loss"  # the validation loss, minimised
    with pytest.raises(KeyError, match="'train_loss'"):
        check_monitor("train_loss", ("a",))


def test_a_checkpoint_from_before_the_data_set_spec_still_resumes(neu_like):
    from Utilities.Checkpoint import check_resumable

    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=1)
    fit(model, train_loader, val_loader, config, used)
    state = read_checkpoint(neu_like / "Models" / "tiny_last.pth")
    for added in ("data_format", "data_root", "binary", "full_resolution", "defect_fraction", "monitor", "output_prior"):
        del state["config"][added]
    check_resumable(state, config.to_dict(), "old.pth")  # missing settings take their defaults
    other = TrainConfig.from_dict({**config.to_dict(), "binary": True}).to_dict()
    with pytest.raises(ValueError, match="1 classes"):
        check_resumable(state, other, "old.pth")


def test_a_model_from_offline_imagenet_weights_predicts_with_their_preprocessing(neu_like):
    from Utilities.Encoder_weights import OFFLINE_WEIGHTS, sha256
    from Utilities.Inference import Predictor

    encoder = "tu-tf_efficientnet_lite0"
    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=1, run_name="lite", encoder=encoder,
                                                             encoder_weights="imagenet")
    assert config.mean == config.std == (0.5, 0.5, 0.5)  # the weights' own, not ResNet's ImageNet statistics
    fit(model, train_loader, val_loader, config, used)
    path = neu_like / "Models" / "lite_best.pth"
    predictor = Predictor(path, precision="float32")
    assert predictor.checkpoint["encoder_weights_used"]["sha256"] == sha256(OFFLINE_WEIGHTS[encoder].source_file())
    assert predictor.config.mean == (0.5, 0.5, 0.5)
    image = torch.randint(0, 256, (32, 32, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    torch.testing.assert_close(predictor.preprocess([image.numpy()])[0], (image.permute(2, 0, 1) / 255 - 0.5) / 0.5)
    loaded, _ = load_checkpoint(path)
    with torch.no_grad():
        expected = torch.sigmoid(loaded(((image.permute(2, 0, 1) / 255 - 0.5) / 0.5)[None]))[0]
    torch.testing.assert_close(torch.from_numpy(predictor.predict([image.numpy()])[0]), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", TrainConfig.settings("option"))
def test_every_option_reads_back_its_default_from_the_command_line(monkeypatch, name):
    from Utilities.Train import parse_config

    default = getattr(TrainConfig(), name) if name != "classes" else ("crazing", "inclusion")
    text = ",".join(default) if isinstance(default, tuple) else str(default).lower() if isinstance(default, bool) else str(default)
    monkeypatch.setattr("sys.argv", ["train", f"--{name.replace('_', '-')}", text])
    assert getattr(parse_config()[0], name) == default


@pytest.mark.parametrize("name", TrainConfig.settings("resume"))
def test_resume_refuses_each_setting_that_must_match(name):
    from Utilities.Checkpoint import check_resumable

    saved = TrainConfig(arch="Unet").to_dict()  # an architecture that takes decoder widths
    check_resumable({"config": saved, "optimizer": {}}, dict(saved), "run_last.pth")
    others = {"data_format": "magnetic_tile", "binary": True, "defect_fraction": 0.5, "optimizer": "adam", "loss": "dice",
              "scheduler": "cosine", "image_head": True, "decoder_channels": [64, 32, 16, 8, 8],
              "decoder_attention": "scse"}
    other = others.get(name, "another value")  # where a config checks the value, another valid one
    with pytest.raises(ValueError, match=f"{name}: checkpoint|6 classes.*builds .* 1 classes"):  # binary: 1 channel
        check_resumable({"config": saved, "optimizer": {}}, {**saved, name: other}, "run_last.pth")


@pytest.mark.parametrize("setting,value,named", [("arch", "Unetz", "architecture"), ("encoder", "resnet35", "encoder"),
                                                 ("loss", "bce_dicee", "loss"), ("optimizer", "sgdd", "optimizer"),
                                                 ("scheduler", "cosinee", "scheduler"),
                                                 ("monitor", "val_dice", "best checkpoint")])
def test_an_unknown_registered_name_is_refused_when_the_config_is_built(setting, value, named):
    with pytest.raises(KeyError, match=f"{named}.*known"):
        TrainConfig(**{setting: value})


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_lasts_the_whole_run_and_stays_at_or_under_the_rate(name):

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = make_scheduler(name, optimizer, 1e-3, steps=12)
    rates = []
    for _ in range(12):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert all(0 <= rate <= 1e-3 * (1 + 1e-6) for rate in rates)


def test_the_loss_terms_are_weighted_by_the_config():

    targets = torch.zeros(2, 1, 8, 8)
    targets[0, 0, 2:5, 2:5] = 1
    logits = torch.randn(2, 1, 8, 8)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    by_dice_weight = [make_loss("bce_dice", dice_weight=w)(logits, targets) for w in (0.0, 1.0, 2.0)]
    assert torch.allclose(by_dice_weight[0], bce)
    assert torch.allclose(by_dice_weight[2] - by_dice_weight[1], by_dice_weight[1] - by_dice_weight[0])  # linear
    with_head = torch.cat([logits, torch.full_like(logits, -3.0)], 1)  # image logits say "no defect" for both
    by_image_weight = [make_loss("bce_dice", image_loss_weight=w)(with_head, targets) for w in (0.0, 1.0, 2.0)]
    assert torch.allclose(by_image_weight[0], make_loss("bce_dice")(logits, targets))
    assert by_image_weight[1] > by_image_weight[0]  # image 0 holds a defect its image logit denies
    assert torch.allclose(by_image_weight[2] - by_image_weight[1], by_image_weight[1] - by_image_weight[0])


def test_a_loss_monitor_keeps_the_epoch_with_the_lowest_val_loss(neu_like):
    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=3, monitor="loss", run_name="by_loss")
    history = fit(model, train_loader, val_loader, config, used)
    best = read_checkpoint(neu_like / "Models" / "by_loss_best.pth")
    assert best["metrics"]["val_loss"] == pytest.approx(history["val_loss"].min())


def test_the_soft_skeleton_of_a_bar_is_its_middle_and_cldice_prefers_the_centre_line():
    from Utilities.Losses import SoftClDiceLoss, soft_skeleton

    bar = torch.zeros(1, 1, 16, 16)
    bar[..., 5:10, 2:14] = 1
    skeleton = soft_skeleton(bar)
    rows = skeleton[0, 0].sum(1)
    assert rows[7] == rows.max() and rows[:5].sum() == 0 and rows[10:].sum() == 0
    centre, off = torch.full_like(bar, -8.0), torch.full_like(bar, -8.0)
    centre[..., 7, 2:14], off[..., 12, 2:14] = 8.0, 8.0  # a line along the middle, and one beside the bar
    loss = SoftClDiceLoss()
    assert loss(centre, bar) < 0.1 < loss(off, bar)
