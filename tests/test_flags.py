"""Every numeric flag of every task, given any value: either the task goes on to its work (here it
then stops at the missing data) or it stops at once with one line naming the flag. Never a
traceback, never invoke's own int() error. Property tests over the values (hypothesis)."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoke import Context
from invoke.exceptions import Exit

import tasks

# task, flag, kind, lowest valid value (or (lowest, highest))
E, J = (1, tasks.MAX_EPOCHS), (1, tasks.MAX_JOBS_PER_CORE * __import__("pipeline.parallel").parallel.cores())
FLAGS = [(tasks.data, "samples", int, (1, 10000)), (tasks.train, "epochs", int, E),
         (tasks.train, "seed", int, (0, 2 ** 63 - 1)), (tasks.train, "batch_size", int, (1, tasks.MAX_BATCH)),
         (tasks.train, "lr", float, None), (tasks.seeds, "seeds", int, (2, tasks.MAX_SEEDS)),
         (tasks.seeds, "epochs", int, E), (tasks.seeds, "jobs", int, J), (tasks.ablation, "jobs", int, J),
         (tasks.ablation, "seeds", int, (2, tasks.MAX_SEEDS)), (tasks.dropout, "epochs", int, E),
         (tasks.filters, "images", int, (1, 10)), (tasks.bench, "images", int, (128, 45000)),
         (tasks.bench, "repeats", int, (1, 100)), (tasks.train_own, "epochs", int, E)]
VALUES = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6).map(str), st.integers(-10**20, 10**20).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(str), st.integers(-5, 300))


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Tasks writing to a temporary tree, with a data path that does not exist (so no download)."""
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    monkeypatch.setattr(tasks, "CACHE", tmp_path / "data")
    monkeypatch.setattr(tasks, "RUNS", tmp_path / "runs")
    monkeypatch.setenv("CIFAR10_PATH", str(tmp_path / "no-such-cifar.tar.gz"))
    return tmp_path


def valid(kind, low, value) -> bool:
    try:
        x = kind(value)
    except (TypeError, ValueError):
        return False
    if kind is float:
        return x == x and abs(x) != float("inf") and x > 0
    low, high = low if isinstance(low, tuple) else (low, None)
    return x >= low and (high is None or x <= high)


@pytest.mark.parametrize("task, flag, kind, low", FLAGS, ids=[f"{t.name}-{f}" for t, f, _, _ in FLAGS])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_any_flag_value_is_work_or_one_line(nowhere, task, flag, kind, low, value):
    with pytest.raises(Exit) as e:
        task(Context(), **{flag: value})
    message = str(e.value.message)
    assert e.value.code == 1 and message.startswith("error: ") and "\n" not in message
    if valid(kind, low, value):
        assert "no-such-cifar" in message or "run `invoke data`" in message  # past the flags, at the data
    else:
        assert f"--{flag.replace('_', '-')}" in message  # says which flag
    assert not (nowhere / "artifacts").exists()


@pytest.mark.parametrize("port", ["x", "0", "-1", "70000", "8000.5"])
def test_bad_port(port):
    with pytest.raises(Exit, match="--port"):
        tasks.serve(Context(), port=port)


@pytest.mark.parametrize("flags", [{"seeds": "1000000"}, {"jobs": "10000"}, {"epochs": "1000000000"}])
def test_huge_sweeps_are_refused_before_any_work(nowhere, flags):
    """Issue 23: `--seeds 1000000` grew the client to 9.8 GB; `--jobs 10000` started workers until
    memory ran out; `--epochs 1000000000` started."""
    with pytest.raises(Exit, match="must be at most"):
        tasks.seeds(Context(), **flags)
