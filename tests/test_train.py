"""The training loop on small synthetic data: it learns, it is deterministic, it reports right."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline.errors import UserError
from pipeline.train import (LOG_COLUMNS, TrainConfig, confusion_matrix, evaluate, fit,
                            format_log_line, select_device)


def synthetic(n, seed):
    """Images whose class shows in the mean colour: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.normal(0, 1, (n, 3, 32, 32)).astype(np.float32)
    x += (y[:, None, None, None] / 2.0 - 2.25).astype(np.float32)
    return x, y.astype(np.int64)


@pytest.fixture(scope="module")
def data():
    x_tr, y_tr = synthetic(640, 0)
    x_va, y_va = synthetic(200, 1)
    x_te, y_te = synthetic(300, 2)
    return {"x_train": x_tr, "y_train": y_tr, "x_val": x_va, "y_val": y_va,
            "x_test": x_te, "y_test": y_te}


CONFIG = TrainConfig(epochs=3, batch_size=64, lr=3e-3, eval_batch_size=128, device="cpu")


@pytest.mark.parametrize("variant", ["lenet_bn_dropout", "lenet_plain"])
def test_fit_learns_and_logs(data, variant):
    lines = []
    result = fit(replace(CONFIG, variant=variant), data, log=lines.append, progress=False)
    log = result["log"]
    assert [r["epoch"] for r in log] == [1, 2, 3] and len(lines) == 3
    assert all(set(LOG_COLUMNS) == set(r) for r in log)
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert result["final"]["test_accuracy"] > 0.3  # chance is 0.1
    assert result["final"]["best_val_accuracy"] == max(r["val_accuracy"] for r in log)
    assert result["confusion"].sum() == len(data["y_test"])
    # accuracy, confusion matrix and predictions agree with each other
    acc = np.trace(result["confusion"]) / len(data["y_test"])
    assert acc == pytest.approx(result["final"]["test_accuracy"])
    assert (result["test_predictions"] == data["y_test"]).mean() == pytest.approx(acc)


def test_same_seed_same_run(data):
    a = fit(CONFIG, data, log=None, progress=False)
    b = fit(CONFIG, data, log=None, progress=False)
    c = fit(replace(CONFIG, seed=1), data, log=None, progress=False)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k])
    assert [r["train_loss"] for r in a["log"]] == [r["train_loss"] for r in b["log"]]
    assert [r["train_loss"] for r in a["log"]] != [r["train_loss"] for r in c["log"]]


def test_smoke_mode_is_one_epoch_on_a_subset(data):
    result = fit(replace(CONFIG, smoke=True, smoke_size=128), data, log=None, progress=False)
    assert len(result["log"]) == 1 and result["final"]["epochs"] == 1


def test_evaluate_matches_a_plain_loop(data):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    x, y = torch.as_tensor(data["x_test"]), torch.as_tensor(data["y_test"])
    out = evaluate(model, x, y, batch_size=7)  # a batch size that does not divide N
    with torch.no_grad():
        logits = model(x)
    assert out["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert torch.equal(out["predictions"], logits.argmax(1))


def test_confusion_matrix_counts_pairs():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(y_true, y_pred, n_classes=3)
    expected = np.zeros((3, 3), int)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    assert np.array_equal(cm, expected)


def test_log_line_is_fixed_width(data):
    rows = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5, "val_loss": 2.0,
             "val_accuracy": 0.123, "test_loss": 1.0, "test_accuracy": 0.99, "seconds": 3.0,
             "eval_seconds": 0.1, "images_per_second": 15000.0} for e in (1, 10)]
    assert len({len(format_log_line(r, 20)) for r in rows}) == 1


def test_devices():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            select_device("cuda")


def test_nan_loss_is_loud(data):
    bad = dict(data, x_train=np.full_like(data["x_train"], np.nan))
    with pytest.raises(FloatingPointError):
        fit(replace(CONFIG, epochs=1), bad, log=None, progress=False)
