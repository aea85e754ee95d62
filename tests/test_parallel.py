"""Training runs side by side (pipeline/parallel.py) give the numbers the same runs give one at a
time, bit for bit, and the thread count of the caller does not reach a run."""
import hashlib

import numpy as np
import pytest
import torch

from pipeline import parallel
from pipeline.sweep import DataRef, _inputs
from pipeline.train import THREADS, TrainConfig, fit

CONFIGS = [TrainConfig(variant=v, epochs=2, batch_size=64) for v in ("lenet_bn_dropout", "lenet_plain")]


def digest(result: dict) -> str:
    """One hash of everything a run publishes: weights, the log's losses and accuracies, predictions."""
    h = hashlib.sha256()
    for t in result["state_dict"].values():
        h.update(t.numpy().tobytes())
    for row in result["log"]:
        h.update(repr([row[k] for k in sorted(row) if "second" not in k]).encode())
    h.update(np.asarray(result["test_predictions"]).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def ref(tiny_cifar):
    return DataRef(str(tiny_cifar.batch_dir), tiny_cifar.md5s, tiny_cifar.counts, 50, 0)


@pytest.mark.slow  # four child processes (interpreter + torch start each)
def test_side_by_side_equals_one_at_a_time(ref, tmp_path):
    results = list(parallel.run_fits(CONFIGS, ref, workers=2, scratch=tmp_path))
    together = {c.variant: digest(r) for c, r in results}
    # each child records the machine it trained on, with the threads it trained with
    assert {r["machine"]["threads"] for _, r in results} == {THREADS}
    alone = {c.variant: digest(r) for c, r in parallel.run_fits(CONFIGS, ref, workers=1, scratch=tmp_path)}
    assert together == alone and len(together) == 2
    # ... and a child's run is the run fit() makes in this process
    assert alone["lenet_plain"] == digest(fit(CONFIGS[1], _inputs(ref, "rescale"), log=None, progress=False))
    assert list(tmp_path.iterdir()) == []  # job and result files are removed


def test_the_callers_threads_do_not_reach_a_run(ref):
    before = torch.get_num_threads()
    data = _inputs(ref, "normalize")
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        result = fit(CONFIGS[0], data, log=None, progress=False)
        assert torch.get_num_threads() == threads  # restored afterwards
        assert result["device"] == f"cpu ({THREADS} threads)"
        assert result["machine"]["threads"] == THREADS  # the record says what the run used
        runs.append(digest(result))
    torch.set_num_threads(before)
    assert runs[0] == runs[1]


def test_workers_follow_cores_and_device(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    assert parallel.workers_for(2, torch.device("cpu")) == 2
    assert parallel.workers_for(1, torch.device("cpu")) == 1
    assert parallel.workers_for(5, torch.device("cpu")) == 2
    monkeypatch.setattr(parallel, "cores", lambda: 1)
    assert parallel.workers_for(2, torch.device("cpu")) == 1
    assert parallel.workers_for(2, torch.device("meta")) == 1  # not the CPU: one at a time


def test_a_dead_child_is_an_error_naming_the_run(ref, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "")
    bad = TrainConfig(variant="lenet_plain", epochs=1, device="no-such-device")
    with pytest.raises(RuntimeError, match="lenet_plain exited with code 1"):
        list(parallel.run_fits([bad], ref, workers=1, scratch=tmp_path))
    assert list(tmp_path.iterdir()) == []
