"""Stage keys follow the import graph (pipeline/deps.py): editing a module a stage imports changes
its key; editing one it does not import leaves the key alone."""
import shutil
from pathlib import Path

import pytest

from pipeline import deps
from pipeline.store import stage_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def copy(tmp_path):
    """tasks.py and pipeline/ in another folder, to edit."""
    shutil.copy(ROOT / "tasks.py", tmp_path / "tasks.py")
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def key(stage, repo):
    return stage_key({}, deps.code_files(stage, repo), repo=repo)


def edit(path: Path, text="\n# edited\n"):
    path.write_text(path.read_text() + text)


def test_training_key_holds_what_training_runs():
    """The modules the hand-kept list left out (issue 22): the run's child process, the contract
    (log columns), the sweep worker's data loading."""
    files = {p.as_posix() for p in deps.code_files("train")}
    assert {"pipeline/parallel.py", "pipeline/contract.py", "pipeline/sweep.py", "pipeline/train.py",
            "pipeline/model.py", "pipeline/preprocess.py", "pipeline/stages.py", "pipeline/store.py"} <= files
    # stages.py imports these for other stages only: training does not reach them
    assert not files & {"pipeline/filters.py", "pipeline/own_cnn.py", "pipeline/gradcheck.py",
                        "pipeline/answers/__init__.py", "pipeline/deps.py"}


def test_every_stage_has_its_own_code():
    found = {s: {p.as_posix() for p in deps.code_files(s)} for s in deps.STAGE_TASKS}
    assert "pipeline/own_cnn.py" in found["train-own"]
    assert "pipeline/gradcheck.py" in found["layers"] and "pipeline/numpy_layers.py" in found["layers"]
    assert "pipeline/filters.py" in found["filters"]
    assert "pipeline/answers/cs182.py" in found["answers"]
    assert "pipeline/answers/render.py" not in found["answers"]  # the site's page renderer
    assert "pipeline/findings.py" in found["plots"]
    assert all(not p.startswith("tasks") for files in found.values() for p in files)


@pytest.mark.parametrize("stage, imported, not_imported", [
    ("train", "pipeline/sweep.py", "pipeline/filters.py"),
    ("train", "pipeline/parallel.py", "pipeline/numpy_layers.py"),
    ("filters", "pipeline/numpy_layers.py", "pipeline/train.py"),
    ("layers", "pipeline/gradcheck.py", "pipeline/own_cnn.py"),
    ("answers", "pipeline/answers/conv.py", "pipeline/answers/render.py"),
])
def test_editing_a_module_changes_only_the_keys_of_stages_that_import_it(copy, stage, imported, not_imported):
    before = key(stage, copy)
    edit(copy / not_imported)
    assert key(stage, copy) == before
    edit(copy / imported)
    assert key(stage, copy) != before


def test_a_new_import_joins_the_key(copy):
    """The list is read from the source: an import added to training's code brings its module in."""
    assert "pipeline/filters.py" not in {p.as_posix() for p in deps.code_files("train", copy)}
    edit(copy / "pipeline" / "train.py", "\n\ndef _later():\n    from pipeline import filters  # noqa\n")
    assert "pipeline/filters.py" in {p.as_posix() for p in deps.code_files("train", copy)}
    before = key("train", copy)
    edit(copy / "pipeline" / "filters.py")
    assert key("train", copy) != before


def test_a_stages_function_another_stage_calls_is_not_followed(copy):
    """stages.py is followed function by function: an import inside the filters stage's function
    does not reach training."""
    stages = copy / "pipeline" / "stages.py"
    text = stages.read_text()
    assert "def filters_outputs(" in text
    stages.write_text(text.replace("def filters_outputs(", "def filters_outputs(*_x):\n    from pipeline import own_cnn  # noqa\n\n\ndef _old_filters(", 1))
    assert "pipeline/own_cnn.py" not in {p.as_posix() for p in deps.code_files("train", copy)}
    assert "pipeline/own_cnn.py" in {p.as_posix() for p in deps.code_files("filters", copy)}


def test_unknown_stage_is_an_error():
    with pytest.raises(KeyError):
        deps.code_files("nonsense")
