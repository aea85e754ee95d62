"""Policies of the stages (pipeline/stages.py) and the sentences of pipeline/findings.py, each
against a hand-worked case or an independent computation."""
import pytest

from pipeline import contract, findings, stages
from pipeline.errors import UserError
from pipeline.sweep import SweepConfig


def test_run_folder_names_what_differs_from_the_reference():
    ref = dict(contract.REFERENCE)
    assert stages.run_folder(ref) is None
    assert stages.run_folder({**ref, "epochs": 1}) == "epochs1"
    assert stages.run_folder({**ref, "lr": 0.01, "seed": 3}) == "lr0.01-seed3"
    assert stages.run_folder({**ref, "smoke": True}) == "smoke"
    # issue 23: nearby rates and smoke runs with other settings no longer share a folder
    assert stages.run_folder({**ref, "lr": 0.0012345678}) != stages.run_folder({**ref, "lr": 0.0012345679})
    assert stages.run_folder({**ref, "smoke": True, "lr": 0.01}) == "smoke-lr0.01"


def test_train_config_defaults_are_the_reference():
    from pipeline.train import TrainConfig
    assert stages.settings_of(TrainConfig()) == contract.REFERENCE


def row(variant, seed, acc, epochs=20):
    return {"variant": variant, "seed": str(seed), "epochs": str(epochs), "batch_size": "128", "lr": "0.001",
            "test_accuracy": str(acc)}


def test_seeds_need_the_reference_runs_with_the_same_settings():
    config = SweepConfig()
    summary = [row("lenet_bn_dropout", 0, 0.64), row("lenet_plain", 0, 0.61)]
    assert stages.seeds_reference(summary, config) == {"lenet_bn_dropout": 0.64, "lenet_plain": 0.61}
    with pytest.raises(UserError, match="no seed-0 run of lenet_plain with 20 epochs"):
        stages.seeds_reference([summary[0], row("lenet_plain", 0, 0.61, epochs=1)], config)


def test_seeds_todo_keeps_finished_runs_and_skips_seed_zero():
    config = SweepConfig()
    done = [row("lenet_plain", 1, 0.6), row("lenet_plain", 2, 0.6, epochs=5)]
    keep, todo = stages.seeds_todo(done, 3, config, force=False)
    assert keep == done[:1]  # a row with other settings is not a repeat of the reference
    assert sorted(s["seed"] for s in todo) == [1, 2, 2] and all(s["seed"] > 0 for s in todo)
    keep, todo = stages.seeds_todo(done, 3, config, force=True)
    assert keep == [] and len(todo) == 4


def test_merge_rows_replaces_the_same_run():
    rows = stages.merge_rows([row("b", 1, 0.5), row("a", 0, 0.1)], row("b", 1, 0.7))
    assert [(r["variant"], r["test_accuracy"]) for r in rows] == [("a", "0.1"), ("b", "0.7")]


def test_verify_verdicts():
    committed = [{**row("lenet_plain", 0, 0.6116), "best_val_accuracy": "0.61", "best_val_epoch": "18",
                  "final_train_accuracy": "0.66", "final_train_loss": "0.96", "test_loss": "1.1"}]
    seeds = {"variants": {"lenet_plain": {"std": 0.0064}}}
    same = [{**committed[0]}]
    rows = stages.verify_rows(committed, same, seeds)
    assert {r["verdict"] for r in rows} == {"identical"} and stages.verdict_of(rows) == "identical"
    near = [{**committed[0], "test_accuracy": "0.6200"}]  # 0.84 pp: within 2 sd = 1.28 pp
    assert stages.verdict_of(stages.verify_rows(committed, near, seeds)) == "within seeds' spread"
    far = [{**committed[0], "test_accuracy": "0.6300"}]   # 1.84 pp: beyond
    assert stages.verdict_of(stages.verify_rows(committed, far, seeds)) == "differs"
    assert stages.verdict_of([]) == "no reference run to compare"


def test_compare_sentence():
    s = findings.compare("a", 0.6359, "b", 0.6116, "test_accuracy")
    assert s == "`a` has the higher test accuracy: 63.6% against 61.2% for `b` (2.4 percentage points)."
    assert "same" in findings.compare("a", 0.6101, "b", 0.6099, "test_accuracy")
    assert "1.50 times as much" in findings.compare("a", 100.0, "b", 150.0, "train_seconds")


@pytest.mark.parametrize("losses,says", [
    ([1.5, 1.2, 1.0], "lowest at the last epoch"),
    ([1.5, 1.0, 1.01], "levelled off"),
    ([1.5, 1.0, 1.3], "overfits"),
])
def test_val_trend(losses, says):
    log = [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(losses)]
    assert says in findings.val_trend("m", log)


def test_seeds_paired_sentence_follows_the_interval():
    p = {"n": 5, "a": "x", "b": "y", "mean": 0.035, "ci_low": 0.021, "ci_high": 0.049, "t": 7.1, "p": 0.002}
    assert "excludes zero" in findings.seeds_paired(p, 0.95)
    assert "includes zero" in findings.seeds_paired({**p, "ci_low": -0.001}, 0.95)


def test_train_outputs_record_the_machine_the_run_trained_on():
    """metrics.json carries fit's machine record as the training process took it (issue 22,
    item 4), and every JSON file train writes holds its contract's keys."""
    import numpy as np

    from pipeline.store import problems
    from pipeline.train import TrainConfig
    config = TrainConfig(variant="lenet_plain")
    machine = {"cpu": "Fake CPU 9000", "isa": "AVX2", "threads": 1, "torch": "2.13.0+cpu"}
    result = {"final": {"test_accuracy": 0.6, "best_val_accuracy": 0.61}, "params_by_layer": {"fc3": 850},
              "device": "cpu (1 threads)", "peak_rss_mib": 400.0, "machine": machine, "log": [],
              "confusion": np.eye(10, dtype=np.int64), "y_test": np.arange(10), "test_predictions": np.arange(10),
              "state_dict": {}}
    info = {"source": "/data/x", "official": True, "md5s": {}, "mismatched": []}
    out = stages.train_outputs(config, result, info, [f"class{i}" for i in range(10)])
    assert out["lenet/lenet_plain/metrics.json"]["machine"] == machine
    for rel, content in out.items():
        if rel.endswith(".json"):
            assert problems(contract.spec_of(rel), content) == [], rel
