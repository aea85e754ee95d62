"""The training loop on small synthetic data: it learns, it is deterministic, it reports right,
and its options (schedule, label smoothing, augmentation, channels_last) do what a hand-written
loop does."""
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from pipeline import train as T
from pipeline.errors import UserError
from pipeline.train import (LOG_COLUMNS, TrainConfig, augment_batch, confusion_matrix, evaluate,
                            fit, format_log_line, select_device, train_epoch)


def synthetic(n, seed):
    """Images whose class shows in the mean colour: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.normal(0, 1, (n, 3, 32, 32)).astype(np.float32)
    x += (y[:, None, None, None] / 2.0 - 2.25).astype(np.float32)
    return x, y.astype(np.int64)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


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
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert lines == [format_log_line(r, 3) for r in log] and len({len(x) for x in lines}) == 1
    assert all(tuple(r) == LOG_COLUMNS for r in log)
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
    result = fit(replace(CONFIG, smoke=True, smoke_size=128), data, log=None, progress=False,
                 train_eval_size=64)
    assert len(result["log"]) == 1 and result["final"]["epochs"] == 1
    # the eval-mode train accuracy comes after the CSV columns (the CSV writer leaves it out)
    assert tuple(result["log"][0]) == (*LOG_COLUMNS, "train_eval_loss", "train_eval_accuracy")


class Recorder(torch.nn.Module):
    """A linear classifier that keeps a copy of every batch it is given, memory format and all."""

    def __init__(self, n_in: int):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, 10)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())  # clone keeps the memory format
        return self.linear(x.flatten(1))


@pytest.mark.parametrize("augment", [None, (2, True), (0, True), (1, False)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_train_epoch_trains_on_the_augmented_batches_in_permutation_order(augment, channels_last):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, 8, 8, generator=g), torch.randint(0, 10, (40,), generator=g)
    model = Recorder(3 * 8 * 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train_epoch(model, optimizer, x, y, 16, torch.Generator().manual_seed(3), augment=augment,
                channels_last=channels_last)
    # by hand: the permutation first, then each batch's augmentation draws, from one generator
    g = torch.Generator().manual_seed(3)
    perm = torch.randperm(40, generator=g)
    starts = range(0, 40, 16)
    assert len(model.seen) == len(starts)
    for i, seen in zip(starts, model.seen):
        plain = x[perm[i:i + 16]]                                   # (B, C, H, W)
        want = plain if augment is None else augment_batch(plain, g, *augment)
        assert torch.equal(seen, want) and torch.equal(seen, plain) == (augment is None)
        assert seen.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert optimizer.param_groups[0]["lr"] == 0.01  # no schedule: the optimizer's lr stays


def test_train_epoch_schedule_and_smoothing_match_a_hand_written_sgd():
    """Plain SGD in float64 with a per-step learning rate and the smoothed cross-entropy written
    out, -((1 - eps) log p_y + eps mean_c log p_c): the same weights, loss and step numbers."""
    g = torch.Generator().manual_seed(0)
    n, b, eps, offset = 50, 16, 0.2, 7
    x = torch.randn(n, 3, 4, 4, dtype=torch.float64, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10)).double()
    w, bias = (p.detach().clone() for p in model[1].parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=123.0)  # replaced at every step
    steps = []

    def schedule(step):
        steps.append(step)
        return 0.5 / (1 + step)

    out = train_epoch(model, optimizer, x, y, b, torch.Generator().manual_seed(1),
                      lr_schedule=schedule, label_smoothing=eps, step_offset=offset)
    assert steps == [offset + k for k in range(-(-n // b))]  # one call per step, counting on
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    loss_sum = 0.0
    for k, i in enumerate(range(0, n, b)):
        idx = perm[i:i + b]
        w.requires_grad_(), bias.requires_grad_()
        logp = torch.log_softmax(x[idx].flatten(1) @ w.T + bias, 1)   # (B, 10)
        loss = -((1 - eps) * logp.gather(1, y[idx, None])[:, 0] + eps * logp.mean(1)).mean()
        dw, db = torch.autograd.grad(loss, (w, bias))
        lr = 0.5 / (1 + offset + k)
        w, bias = (w - lr * dw).detach(), (bias - lr * db).detach()
        loss_sum += loss.item() * len(idx)
    torch.testing.assert_close(model[1].weight, w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model[1].bias, bias, rtol=1e-12, atol=1e-12)
    assert out["loss"] == pytest.approx(loss_sum / n, rel=1e-6)  # train_epoch sums in float32


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


def test_log_line_is_fixed_width_and_shows_the_fields_a_row_has():
    lenet = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5, "val_loss": 2.0,
              "val_accuracy": 0.123, "test_loss": 1.0, "test_accuracy": 0.99, "seconds": 3.0,
              "eval_seconds": 0.1, "images_per_second": 15000.0} for e in (1, 10)]
    own = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.05 * e, "seconds": 60.0 / e,
            "images_per_second": 900.0 * e, "elapsed_train_seconds": 80.0 * e} for e in (1, 10)]
    for rows in (lenet, own):
        assert len({len(format_log_line(r, 20)) for r in rows}) == 1
    assert "val loss" in format_log_line(lenet[0], 20) and "min" not in format_log_line(lenet[0], 20)
    assert "val" not in format_log_line(own[0], 20) and "test" not in format_log_line(own[0], 20)
    assert format_log_line(own[1], 20).endswith("|  13.3 min")
    full = dict(own[0], train_accuracy=1.0)  # 100.00%: one digit more, the same width
    assert len(format_log_line(full, 20)) == len(format_log_line(own[0], 20))


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


# --- the GPU path, tested on the CPU (issue 22, item 6: no GPU has run `--device cuda`) ------------

class Placement(TorchFunctionMode):
    """`with Placement() as p:` tracks, op by op, which tensors a GPU run would hold on its device.

    On the CPU every tensor is on the one device, so a tensor made without `device=` works here
    and fails on a GPU as soon as an op mixes it with the data. This mode finds those: a tensor is
    *placed* when it comes from `.to(device)`, from a factory given `device=`, or from an op on a
    placed tensor; *unplaced* when a factory made it without a device (the CPU by default) or the
    run brought it back (`.cpu()`, `.numpy()`, `.item()`); tensors made outside (autograd's
    gradients) are neither. `p.mixed` lists every op that got both, the way CUDA refuses them:
    a 0-dim CPU tensor is accepted as an input, not as the target of an in-place op; copy_
    copies across devices by design.
    """
    LEAVING = {"cpu", "numpy", "tolist", "item"}

    def __init__(self):
        super().__init__()
        self.placed, self.unplaced, self.mixed = {}, {}, []  # id -> tensor (kept: ids stay unique)

    def _state(self, t):
        return "placed" if id(t) in self.placed else "unplaced" if id(t) in self.unplaced else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        tensors = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        states = [self._state(t) for t in tensors]
        if "placed" in states and "unplaced" in states and name != "copy_":
            inplace = (name.endswith("_") and not name.startswith("__")) or name.startswith("__i")
            bad = [tuple(t.shape) for t, st in zip(tensors, states)
                   if st == "unplaced" and (t.dim() > 0 or (inplace and t is tensors[0]))]
            if bad:
                self.mixed.append((name, bad))
        if name in self.LEAVING:
            state = "unplaced"
        elif kwargs.get("device") is not None or "placed" in states or (
                name == "to" and any(isinstance(a, (torch.device, str)) for a in args[1:])):
            state = "placed"
        else:
            state = "unplaced" if "unplaced" in states or not tensors else None
        for t in pytree.tree_leaves(out) if state else ():
            if isinstance(t, torch.Tensor):
                (self.placed if state == "placed" else self.unplaced)[id(t)] = t
                (self.unplaced if state == "placed" else self.placed).pop(id(t), None)
        return out


def test_placement_finds_a_tensor_made_without_the_device():
    """The tracker itself: the bug it is for (found once in MaxPool2x2ReLU's index arithmetic)."""
    with Placement() as p:
        x = torch.ones(4, 3).to("cpu")
        _ = x + torch.arange(3)                              # made on the CPU: fails on a GPU
        _ = x + torch.arange(3, device=x.device)             # fine
        _ = x * torch.tensor(2.0)                            # a 0-dim CPU input: CUDA accepts it
        total = torch.zeros(())
        total += x.sum()                                     # a CPU accumulator: fails on a GPU
        _ = x.sum().cpu() + torch.zeros(1)                   # both on the host: fine
    assert p.mixed == [("add", [(3,)]), ("add_", [()])]


@pytest.mark.parametrize("variant", ["lenet_bn_dropout", "lenet_plain"])
def test_fit_keeps_every_tensor_on_the_run_device(data, variant, monkeypatch):
    """fit through the code path a GPU run takes: data, model, optimizer state, batches,
    augmentation and evaluation all on the device the run asked for, nothing made beside it."""
    built, build_model = [], T.build_model
    monkeypatch.setattr(T, "build_model", lambda *a, **k: built.append(build_model(*a, **k)) or built[-1])
    small = {k: v[:256] for k, v in data.items()}
    config = replace(CONFIG, variant=variant, epochs=1)
    with Placement() as p:
        fit(config, small, log=None, progress=False, train_eval_size=64)
    assert p.mixed == []
    model = built[0]
    assert [n for n, t in (*model.named_parameters(), *model.named_buffers()) if id(t) not in p.placed] == []
    with Placement() as p:  # the crop-and-flip augmentation a variant may use
        x = torch.as_tensor(small["x_train"][:8]).to("cpu")
        augment_batch(x, torch.Generator().manual_seed(0), *T.CROP_FLIP)
    assert p.mixed == []


def test_set_seed_seeds_cuda_too(monkeypatch):
    """torch.manual_seed seeds every CUDA device as well (torch.cuda.manual_seed_all, queued until
    CUDA starts): the one set_seed covers a GPU run without a CUDA call of its own."""
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    T.set_seed(7)
    assert seeded == [7]


def cuda_settings() -> tuple:
    return (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
            torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            os.environ.get(T.CUBLAS_WORKSPACE[0]))


@pytest.mark.parametrize("preset", [None, ":16:8"])
def test_deterministic_cuda_sets_the_flags_on_cuda_only_and_restores_them(monkeypatch, preset):
    name, workspace = T.CUBLAS_WORKSPACE
    if preset is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, preset)  # a user's own workspace setting is kept
    before = cuda_settings()
    with T.deterministic_cuda(torch.device("cpu")):
        assert cuda_settings() == before  # CPU runs: nothing changes
    with T.deterministic_cuda(torch.device("cuda", 0)):  # a device object needs no GPU
        assert cuda_settings() == (True, False, True, True, preset or workspace)
    assert cuda_settings() == before


def test_fit_on_cuda_runs_inside_the_deterministic_settings_and_records_its_machine(monkeypatch, data):
    """fit's CUDA branch up to the GPU itself: the device it resolves reaches _fit, the run sits
    inside deterministic_cuda, the CPU thread count is left alone, and the machine recorded is
    the run's device with the GPU's name."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA Fake 80GB")
    seen = {}

    def fake_fit(config, data_, device, log, progress, train_eval_size):
        seen.update(device=device, settings=cuda_settings()[:4], threads=torch.get_num_threads())
        return {"device": T.device_description(device)}
    monkeypatch.setattr(T, "_fit", fake_fit)
    threads = torch.get_num_threads()
    before = cuda_settings()
    result = fit(replace(CONFIG, device="cuda"), data, log=None, progress=False)
    assert seen == {"device": torch.device("cuda"), "settings": (True, False, True, True), "threads": threads}
    assert cuda_settings() == before and torch.get_num_threads() == threads
    assert result["device"] == "cuda (NVIDIA Fake 80GB)"
    assert result["machine"]["device"] == "cuda" and result["machine"]["gpu"] == "NVIDIA Fake 80GB"


def test_fit_records_the_machine_with_the_threads_it_trained_with(data):
    torch.set_num_threads(2)  # the caller's setting; fit trains with THREADS (one_thread restores it)
    result = fit(replace(CONFIG, epochs=1), {k: v[:128] for k, v in data.items()}, log=None, progress=False)
    assert result["machine"]["threads"] == T.THREADS and result["machine"]["device"] == "cpu"
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_asking_for_cuda_without_one_is_one_sentence(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError) as e:
        select_device(name)
    assert "no CUDA GPU" in str(e.value) and "--device cpu" in str(e.value) and "\n" not in str(e.value)


def test_device_description_names_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA Fake 80GB")
    assert T.device_description(torch.device("cuda", 0)) == "cuda (NVIDIA Fake 80GB)"
    assert T.device_description(torch.device("cpu")) == f"cpu ({torch.get_num_threads()} threads)"
