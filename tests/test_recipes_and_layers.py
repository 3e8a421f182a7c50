"""Recipes, the registries below Config, and the import graph of Utilities/."""

import ast
from pathlib import Path

import pytest
import torch

from Utilities.Config import TrainConfig
from Utilities.Errors import UnknownName
from Utilities.Meter import Meter, score_names
from Utilities.Recipes import RECIPES

UTILITIES = Path(__file__).resolve().parents[1] / "Utilities"


def imports_of(path: Path) -> set[str]:
    """The ``Utilities`` modules a module imports anywhere (functions too), except for type checking only."""
    tree = ast.parse(path.read_text())
    checking = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("Utilities."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("Utilities.")}
    return found


LAYERS = {  # as the README's table: each module imports only from its own layer or those before it
    "base": ("Errors", "Files", "Images", "Overlay", "Validate_data", "Rle", "Extract_masks", "Annotation_files", "Colour_masks",
             "Encoder_weights", "Architectures", "Losses", "Optim", "Meter", "Crack_metrics", "Postprocess", "Recipes",
             "Distributed", "Precision", "Hardware", "Fast_layers"),
    "data": ("Data_source", "Labelling_formats", "Formats", "Setup_data", "Sample_data", "Transforms"),
    "config": ("Config", "Cli"),
    "model": ("Resnet_Unet", "Checkpoint"),
    "training": ("Data_Retriever_Seg", "Validation_split", "Trainer", "Train"),
    "prediction": ("Fast_inference", "Int8", "Sliding_window", "Large_images", "Inference", "Predict_folder", "Evaluate", "Tune",
                   "Onnx_export", "Plots", "Notebook", "Coco_export", "Review_page"),
}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A chain of imports that comes back to where it started, or ``None``."""
    state: dict[str, str] = {}

    def visit(module: str, chain: list[str]) -> list[str] | None:
        if state.get(module) == "open":
            return chain[chain.index(module):] + [module]
        if state.get(module) == "done":
            return None
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if found := visit(imported, chain + [module]):
                return found
        state[module] = "done"
        return None

    return next((found for module in sorted(graph) if (found := visit(module, []))), None)


def test_utilities_has_no_import_cycle_and_its_layers_point_down():
    graph = {path.stem: imports_of(path) for path in UTILITIES.glob("*.py") if path.stem != "__init__"}
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"
    layer = {module: rank for rank, modules in enumerate(LAYERS.values()) for module in modules}
    assert set(graph) == set(layer), f"place each module in a layer: {sorted(set(graph) ^ set(layer))}"
    upward = [f"{m} imports {i}" for m, imported in graph.items() for i in imported if layer[i] > layer[m]]
    assert not upward, upward


def test_the_cycle_check_finds_a_cycle(tmp_path):
    (tmp_path / "A.py").write_text("from Utilities.B import x\n")
    (tmp_path / "B.py").write_text("def f():\n    from Utilities.A import y\n")
    graph = {name: imports_of(tmp_path / f"{name}.py") for name in ("A", "B")}
    assert graph == {"A": {"B"}, "B": {"A"}} and find_cycle(graph) == ["A", "B", "A"]
    assert find_cycle({"A": {"B"}, "B": set()}) is None


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_builds_a_config_and_says_what_it_is_for(name):
    config = TrainConfig.from_recipe(name)
    assert config.recipe == name and len(RECIPES[name].description.split()) >= 5
    assert config.run_name and config.epochs >= 20
    assert TrainConfig.from_recipe(name, epochs=3, arch="Unet").epochs == 3  # overrides win


def test_the_neu_det_recipe_is_the_configs_defaults_and_data_set_recipes_extend_generic_ones():
    assert TrainConfig.from_recipe("neu_det") == TrainConfig(recipe="neu_det")
    crackforest, thin = TrainConfig.from_recipe("crackforest"), TrainConfig.from_recipe("thin_structures")
    model = ("arch", "encoder", "image_size", "epochs", "full_resolution", "scores", "monitor")
    assert [getattr(crackforest, k) for k in model] == [getattr(thin, k) for k in model]
    assert crackforest.split_file == "splits/CrackForest.csv" and thin.data_format == "folders"
    with pytest.raises(UnknownName, match="unknown recipe 'cracks'; known: multiclass_small_images"):
        TrainConfig.from_recipe("cracks")


def test_score_names_are_known_without_scoring_and_match_what_the_meter_computes():
    meter = Meter(("a", "b"))
    meter.update(torch.rand(2, 2, 4, 4), (torch.rand(2, 2, 4, 4) > 0.5).float())
    names = score_names(("a", "b"))
    assert set(meter.compute()) == set(names) and len(set(names)) == len(names)


def test_a_checkpoints_config_loads_for_prediction_although_its_loss_was_renamed_since():
    stored = {**TrainConfig().to_dict(), "loss": "an_old_loss", "scheduler": "gone", "monitor": "old_score"}
    config = TrainConfig.from_dict(stored)
    assert config.loss == "an_old_loss" and config.channels == TrainConfig().channels
    with pytest.raises(UnknownName, match="unknown loss 'an_old_loss'; known: bce_dice"):
        TrainConfig.from_dict(stored, training=True)  # resuming trains: checked
    with pytest.raises(UnknownName, match="architecture"):
        TrainConfig.from_dict({**stored, "arch": "Unetz"})  # prediction builds the model: checked


def test_prediction_imports_neither_matplotlib_nor_the_data_loaders():
    import subprocess
    import sys

    code = "import sys, Utilities.Inference; print(sorted({'matplotlib', 'Utilities.Data_Retriever_Seg', 'Utilities.Trainer'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=UTILITIES.parent, check=True)
    assert done.stdout.strip() == "[]"
