"""Precision chosen by measurement (``Precision``): the faster path wins, the choice is cached per machine, and a
precision asked for is the one used."""

import json

import pytest
import torch

from Utilities import Precision
from Utilities.Fast_inference import openvino_precision
from Utilities.Hardware import precision_choice


@pytest.fixture(autouse=True)
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DEFECT_SEG_CACHE", str(tmp_path))


class FakeClock:
    """A clock that only the calls move: each candidate's call takes the seconds it is given."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def calls(self, seconds: dict[str, float]):
        def call_of(name):
            def call():
                self.now += seconds[name]
            return call
        return lambda: {name: call_of(name) for name in seconds}


def test_interleaved_rates_take_turns_after_the_warm_up_and_count_images_per_second():
    calls, clock = [], [0.0]

    def call(name: str, seconds: float):
        calls.append(name)
        clock[0] += seconds

    rates = Precision.interleaved_rates({"a": lambda: call("a", 0.5), "b": lambda: call("b", 2.0)}, images_per_call=8,
                                        calls_per_round=2, rounds=3, warmup=1, clock=lambda: clock[0])
    assert "".join(calls) == "ab" + "aabb" + "bbaa" + "aabb"  # each round starts one call later
    assert rates == {"a": [16.0] * 3, "b": [4.0] * 3}  # 16 images in 1 s, 16 in 4 s
    assert Precision.medians({"a": [1.0, 9.0, 3.0]}) == {"a": 3.0}



@pytest.mark.parametrize("seconds, expected", [
    ({"float32": 2.0, "bfloat16": 1.0}, "bfloat16"),
    ({"float32": 1.0, "bfloat16": 2.0}, "float32"),
    ({"float32": 1.0, "bfloat16": 0.99}, "float32"),  # within the margin: float32, the exact one
    ({"float32": 1.0}, "float32"),  # bfloat16 left out where it would run as float32
])
def test_the_faster_candidate_is_chosen(seconds, expected):
    clock = FakeClock()
    choice = Precision.measured_choice("training", clock.calls(seconds), images_per_call=2, clock=clock)
    assert choice.precision == expected
    assert choice.rates == pytest.approx({name: 2 / s for name, s in seconds.items()})
    assert expected in choice.describe() and "measured now" in choice.describe()


def test_the_choice_is_cached_and_measured_again_when_the_machine_changes(monkeypatch):
    clock = FakeClock()
    first = Precision.measured_choice("training", clock.calls({"float32": 2.0, "bfloat16": 1.0}), 2, clock=clock)

    def not_again():
        raise AssertionError("measured again with a valid cache")

    cached = Precision.measured_choice("training", not_again, 2)
    assert (cached.precision, cached.rates) == (first.precision, first.rates) and "cached" in cached.how
    saved = json.loads(Precision.cache_file().read_text())
    assert saved["machine"] == Precision.machine_key() and set(saved["choices"]) == {"training"}

    other = Precision.machine_key() | {"torch": "0.0"}
    monkeypatch.setattr(Precision, "machine_key", lambda: other)  # an upgrade, another CPU or core count
    again = Precision.measured_choice("training", clock.calls({"float32": 1.0, "bfloat16": 2.0}), 2, clock=clock)
    assert again.precision == "float32" and "measured now" in again.how


def test_an_unwritable_cache_still_gives_a_choice(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("DEFECT_SEG_CACHE", str(tmp_path / "file"))  # a file where the folder should be
    clock = FakeClock()
    choice = Precision.measured_choice("training", clock.calls({"float32": 2.0, "bfloat16": 1.0}), 2, clock=clock)
    assert choice.precision == "bfloat16" and "not cached" in choice.how


def test_an_unreadable_cache_is_measured_again():
    Precision.cache_file().write_text("{not json")
    clock = FakeClock()
    assert Precision.measured_choice("training", clock.calls({"float32": 1.0, "bfloat16": 2.0}), 2,
                                     clock=clock).precision == "float32"


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
def test_a_precision_asked_for_is_used_without_measuring(monkeypatch, precision):
    monkeypatch.setattr(Precision, "measured_choice", lambda *a, **k: pytest.fail("measured a forced precision"))
    for purpose in ("training", "prediction"):
        assert precision_choice(torch.device("cpu"), precision, purpose).precision == precision
    assert openvino_precision(precision).precision == precision


def test_auto_on_the_cpu_measures_each_purpose_once():
    """The real calibration: a training and a prediction choice, each cached under its own purpose."""
    choices = [precision_choice(torch.device("cpu"), "auto", purpose) for purpose in ("training", "prediction")]
    assert all(c.precision in Precision.CANDIDATES and set(c.rates) == set(Precision.CANDIDATES) for c in choices)
    saved = json.loads(Precision.cache_file().read_text())["choices"]
    assert set(saved) == {"training, PyTorch on the CPU", "prediction, PyTorch on the CPU"}
    assert precision_choice(torch.device("cpu"), "auto", "training").rates == choices[0].rates


def test_openvino_measures_only_the_precisions_it_would_run():
    pytest.importorskip("openvino")
    choice = openvino_precision("auto")
    assert "float32" in choice.rates and set(choice.rates) <= set(Precision.CANDIDATES)
    assert choice.precision in choice.rates


def test_training_and_prediction_use_the_precision_asked_for_and_say_so(neu_like, capsys):
    from test_training import tiny_run

    from Utilities.Inference import Predictor
    from Utilities.Trainer import fit

    model, train_loader, val_loader, config, used = tiny_run(neu_like, epochs=1, precision="bfloat16")
    fit(model, train_loader, val_loader, config, used)
    assert "precision: training, PyTorch on the CPU in bfloat16 (precision='bfloat16' asked for)" in capsys.readouterr().out
    checkpoint = neu_like / "Models" / "tiny_best.pth"
    predictor = Predictor(checkpoint, precision="bfloat16", backend="torch")
    assert predictor.dtype == torch.bfloat16 and next(predictor.model.parameters()).dtype == torch.bfloat16
    assert Predictor(checkpoint, precision="float32", backend="torch").dtype is None
