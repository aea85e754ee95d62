"""The own-design CNN of CS182 5(d): the whitening layer, shapes and parameter count, the
learning-rate schedule, test-time flips, the search's choice, and the committed run."""
import csv
import json
from pathlib import Path

import pytest
import torch

from pipeline import own_cnn as O
from pipeline.errors import UserError
from pipeline.train import format_log_line, run_epochs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts" / "own_cnn"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_whitening_layer_decorrelates_2x2_patches():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(200, 1, 33, 33, generator=g)
    # neighbouring pixels and channels strongly correlated, as in natural images
    x = torch.cat([base[..., :32, :32] + 0.1 * torch.randn(200, 1, 32, 32, generator=g) * k
                   for k in (1, 2, 3)], 1) + 0.5 * base[..., 1:, 1:]
    w = O.whitening_weights(x, eps=0.0)
    assert w.shape == (24, 3, 2, 2)
    torch.testing.assert_close(w[12:], -w[:12])
    out = torch.nn.functional.conv2d(x.double(), w[:12].double())       # (N, 12, 31, 31)
    flat = out.transpose(0, 1).reshape(12, -1)
    flat = flat - flat.mean(1, keepdim=True)
    cov = flat @ flat.T / flat.shape[1]
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=1e-4, rtol=0)


def test_shapes_and_parameter_count_by_hand():
    widths = (8, 16, 32)
    m = O.OwnCNN(widths)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    by_hand = 24 * 3 * 4 + 24                                   # whitening conv (frozen) + bias
    for c_in, c_out in [(24, 8), (8, 16), (16, 32)]:
        by_hand += c_out * c_in * 9 + c_out * c_out * 9 + 2 * 2 * c_out  # 2 convs, 2 BN (w, b)
    by_hand += 32 * 10
    assert O.count_params(m) == by_hand
    assert not m.whiten.weight.requires_grad


def test_bad_widths_are_a_user_error():
    with pytest.raises(UserError, match="three positive channel counts"):
        O.OwnCNN((8, 16))


def test_one_cycle_schedule():
    total, peak = 100, 0.4
    lrs = [O.lr_at(s, total, peak, warmup=0.2) for s in range(total)]
    assert lrs[0] == 0 and lrs[20] == pytest.approx(peak) and max(lrs) == pytest.approx(peak)
    assert all(a < b for a, b in zip(lrs[:21], lrs[1:21]))         # rising during warm-up
    assert all(a > b for a, b in zip(lrs[20:], lrs[21:]))          # then falling
    assert lrs[-1] == pytest.approx(0)
    # airbench's ends: from 0.2 of the peak, down to 0.07 of it at the last step
    lrs = [O.lr_at(s, total, peak, 0.23, start=0.2, end=0.07) for s in range(total)]
    assert lrs[0] == pytest.approx(0.2 * peak) and lrs[23] == pytest.approx(peak)
    assert lrs[-1] == pytest.approx(0.07 * peak) and min(lrs) == lrs[-1]
    assert lrs[61] == pytest.approx(peak * (1 - 0.93 * 38 / 76))   # linear in between


def _shift(x, d):
    """x viewed one pixel up-left (d = -1: pixel (i, j) shows (i - 1, j - 1)) or down-right
    (d = +1), reflecting at the border, by explicit indices: an independent check of
    tta_logits's padding."""
    n = x.shape[-1]
    idx = [abs(i + d) for i in range(n)]
    idx = [2 * (n - 1) - i if i > n - 1 else i for i in idx]
    return x[..., idx, :][..., :, idx]


def test_test_time_augmentation_levels_are_the_means_of_their_views():
    m = O.OwnCNN((8, 8, 8)).eval()
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        def mirrored(v):
            return (m(v) + m(v.flip(-1))) / 2
        want = {0: m(x), 1: mirrored(x),
                2: mirrored(x) / 2 + (mirrored(_shift(x, -1)) + mirrored(_shift(x, 1))) / 4}
    for level, logits in want.items():
        torch.testing.assert_close(O.predict(m, x, tta=level, channels_last=False), logits)
        torch.testing.assert_close(O.predict(m, x, tta=level, channels_last=True), logits, atol=1e-5, rtol=1e-5)
    with pytest.raises(UserError, match="tta must be"):
        O.predict(m, x, tta=3)


def test_bias_norm_moves_its_shift_as_sgd_with_a_scaled_learning_rate_would():
    """SGD (Nesterov, weight decay) on BiasNorm's stored shift b' = b / 8 moves b exactly as SGD
    with 64 times the learning rate and 1/64 of the weight decay (the same decay per step) moves
    a plain batch norm's bias: airbench's bias_scaler, checked against torch's own BatchNorm."""
    torch.manual_seed(0)
    x, target = torch.randn(16, 4, 5, 5), torch.randn(16, 4, 5, 5)
    ours = O.BiasNorm(4, bias_scaler=64.0)
    plain = torch.nn.BatchNorm2d(4, eps=1e-12, momentum=0.4)
    with torch.no_grad():
        plain.bias.copy_(torch.randn(4))
        ours.bias.copy_(plain.bias / 8)
    plain.weight.requires_grad_(False)
    lr, wd = 0.01, 0.003
    opt_ours = torch.optim.SGD([ours.bias], lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    opt_plain = torch.optim.SGD([plain.bias], lr=64 * lr, momentum=0.9, nesterov=True, weight_decay=wd / 64)
    for _ in range(3):
        for norm, opt in ((ours, opt_ours), (plain, opt_plain)):
            opt.zero_grad()
            ((norm(x) - target) ** 2).mean().backward()
            opt.step()
        torch.testing.assert_close(ours.bias * 8, plain.bias, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.running_mean, plain.running_mean)
    assert not ours.weight.requires_grad and torch.equal(ours.weight, torch.ones(4))


def test_dirac_convs_start_by_passing_their_inputs_on():
    x = torch.randn(2, 4, 6, 6)
    widening, narrowing = O.dirac_conv(4, 6), O.dirac_conv(4, 3)
    with torch.no_grad():
        torch.testing.assert_close(widening(x)[:, :4], x)
        torch.testing.assert_close(narrowing(x), x[:, :3])
        assert widening(x)[:, 4:].abs().sum() > 0                   # the rest: default init


def test_lookahead_follows_pulls_back_and_hands_over():
    net = O.OwnCNN((4, 4, 4))
    slow = O.Lookahead(net)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for v in net.state_dict().values():
            if v.is_floating_point():
                v.add_(1.0)                                      # weights and running statistics
    moved = {k: v.clone() for k, v in net.state_dict().items()}
    slow.update(net, 0.25)                                       # 3/4 of the way to the net
    for k, v in net.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, start[k] + 0.75)
            torch.testing.assert_close(slow.slow[k], v)
        else:
            assert torch.equal(v, moved[k])                      # counters untouched
    with torch.no_grad():
        net.groups[0][0].weight.add_(4.0)
    slow.update(net, 1.0)                                        # decay 1: the net becomes the slow copy
    torch.testing.assert_close(net.groups[0][0].weight, start["groups.0.0.weight"] + 0.75)
    assert O.lookahead_decay(0, 10) == 0 and O.lookahead_decay(10, 10) == pytest.approx(0.95 ** 5)


def test_step_hook_counts_steps_and_shares_the_groups():
    p = torch.nn.Parameter(torch.ones(2))
    sgd, seen = torch.optim.SGD([p], lr=0.1), []
    hook = O.StepHook(sgd, seen.append)
    assert hook.param_groups is sgd.param_groups
    for _ in range(3):
        hook.zero_grad()
        p.sum().backward()
        hook.step()
    assert seen == [1, 2, 3] and torch.allclose(p, torch.full((2,), 0.7))


def test_fit_learns_a_separable_task_and_never_sees_test_labels_it_is_not_given(monkeypatch):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (512,), generator=g)
    x = torch.randn(512, 3, 32, 32, generator=g) * 0.5
    x[:, 0] += (2 * y - 1)[:, None, None].float()                # class = red channel up or down
    data = {"x_train": x[:448], "y_train": y[:448], "x_val": x[448:], "y_val": y[448:]}
    options = {}

    def spy(*args, **kwargs):  # the shared loop, recording the options the own CNN gives it
        options.update(kwargs)
        return run_epochs(*args, **kwargs)

    monkeypatch.setattr(O, "run_epochs", spy)
    config, lines = O.OwnConfig(widths=(8, 8, 8), epochs=3, batch_size=64, lr=0.2, whiten_bias_epochs=1), []
    bias_grads = []  # whether the whitening bias (the first trainable parameter) still trains, per step
    hook = O.StepHook

    class Spy(hook):
        def step(self):
            bias_grads.append(self.optimizer.param_groups[0]["params"][0].grad is not None)
            super().step()

    monkeypatch.setattr(O, "StepHook", Spy)
    r = O.fit(config, data, torch.device("cpu"), log=lines.append)
    assert r["final"]["val_accuracy"] > 0.9
    assert "test_accuracy" not in r["final"] and "test_predictions" not in r
    assert [row["epoch"] for row in r["log"]] == [1, 2, 3]
    # one format_log_line per epoch, the columns of own_cnn/log.csv in order
    assert lines == [format_log_line(row, 3) for row in r["log"]] and len({len(x) for x in lines}) == 1
    assert all(tuple(row) == O.LOG_COLUMNS for row in r["log"])
    assert r["final"]["train_seconds"] == r["log"][-1]["elapsed_train_seconds"]
    total = 3 * 448 // 64
    assert options["augment"] == (config.translate, config.flip)
    assert options["label_smoothing"] == config.label_smoothing and options["channels_last"]
    assert [options["lr_schedule"](s) for s in range(total)] == \
        [O.lr_at(s, total, config.lr, config.warmup, config.lr_start, config.lr_end) for s in range(total)]
    # the whitening bias trains for whiten_bias_epochs only
    assert bias_grads == [True] * (total // 3) + [False] * (total - total // 3)


def test_later_stages_start_from_the_best_trial_so_far():
    rows = [{"trial": n, **O.search_row(O.OwnConfig(**o), o), "val_accuracy": str(0.5 + 0.01 * i),
             "train_seconds": "100"} for i, (n, o) in enumerate(O.stage_trials(0, []).items())]
    best = O.overrides_of(rows[-1])
    for name, overrides in O.stage_trials(1, rows).items():
        assert overrides["lr"] == best["lr"] and overrides["epochs"] == O.TRIAL_EPOCHS
        assert set(O.SEARCH[1][name]) <= set(overrides)


def test_search_rows_round_trip_and_the_choice_respects_the_budget():
    config = O.OwnConfig(widths=(16, 32, 64), lr=0.3, flip=False)
    row = {k: str(v) for k, v in O.search_row(config, {}).items()}
    assert O.overrides_of(row) == {k: getattr(config, k) for k in O.SEARCH_KEYS}
    rows = [{**row, "trial": "a", "val_accuracy": "0.80", "train_seconds": "100"},
            {**row, "trial": "b", "val_accuracy": "0.90", "train_seconds": str(O.BUDGET_SECONDS + 1)},
            {**row, "trial": "c", "val_accuracy": "0.85", "train_seconds": "500"}]
    chosen = O.choose(rows)
    assert chosen["trial"] == "c"
    per_epoch = 500 / config.epochs
    assert chosen["final_epochs"] == min(O.MAX_EPOCHS, int(O.BUDGET_SHARE * O.BUDGET_SECONDS // per_epoch))
    with pytest.raises(UserError, match="within the budget"):
        O.choose(rows[1:2])


# --- the committed run -------------------------------------------------------------------------

def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_committed_summary_has_the_lenet_columns_and_its_accuracy_is_the_predictions():
    from pipeline.contract import SUMMARY_COLUMNS
    rows = _read(OUT / "summary.csv")
    assert len(rows) == 1 and tuple(rows[0]) == SUMMARY_COLUMNS
    preds = _read(OUT / "predictions.csv")
    acc = sum(p["label"] == p["prediction"] for p in preds) / len(preds)
    assert len(preds) == 10000 and float(rows[0]["test_accuracy"]) == pytest.approx(acc)
    metrics = json.loads((OUT / "metrics.json").read_text())
    assert metrics["within_budget"] == (float(rows[0]["train_seconds"]) <= O.BUDGET_SECONDS)
    weights = torch.load(OUT / "weights.pt")
    model = O.OwnCNN(tuple(metrics["config"]["widths"]))
    model.load_state_dict(weights)
    assert O.count_params(model) == int(rows[0]["params"])


def test_committed_choice_is_the_best_validation_trial():
    rows = _read(OUT / "search.csv")
    chosen = json.loads((OUT / "chosen.json").read_text())
    assert chosen["trial"] == O.choose(rows)["trial"]
    assert {r["trial"] for r in rows} == set(O.trial_names())
    # every later stage starts from the best trial of the stages before it
    for stage in range(1, len(O.SEARCH)):
        before = [r for r in rows if r["trial"] in {t for st in O.SEARCH[:stage] for t in st}]
        for name, overrides in O.stage_trials(stage, before).items():
            row = next(r for r in rows if r["trial"] == name)
            assert O.overrides_of(row) == {**O.overrides_of(O.search_row(O.OwnConfig(), {})), **overrides}
    metrics = json.loads((OUT / "metrics.json").read_text())
    assert {k: metrics["config"][k] for k in O.SEARCH_KEYS if k not in ("widths", "epochs")} == \
        {k: v for k, v in O.overrides_of(chosen).items() if k not in ("widths", "epochs")}
    assert tuple(metrics["config"]["widths"]) == O.overrides_of(chosen)["widths"]
    assert metrics["config"]["epochs"] == chosen["final_epochs"]


def test_the_target_finding_says_met_only_when_both_accuracy_and_time_are_within():
    met = O.target_finding(O.TARGET_ACCURACY, O.BUDGET_SECONDS)
    assert met["met"] and met["sentence"].endswith("is met.")
    short = O.target_finding(O.TARGET_ACCURACY - 0.0123, 100)
    assert not short["met"] and "1.23 percentage points short" in short["sentence"]
    slow = O.target_finding(0.99, O.BUDGET_SECONDS + 1)
    assert not slow["met"] and "longer than the budget" in slow["sentence"]


def test_fit_keeps_every_tensor_on_the_run_device(monkeypatch):
    """The own CNN's fit through a GPU run's code path (issue 22, item 6), tracked as in
    tests/test_train.py: whitening, Lookahead, augmentation, channels_last and test-time
    augmentation make nothing beside the device, and the model lives on it."""
    from tests.test_train import Placement
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (256,), generator=g)
    x = torch.randn(256, 3, 32, 32, generator=g)
    data = {"x_train": x[:192], "y_train": y[:192], "x_val": x[192:224], "y_val": y[192:224],
            "x_test": x[224:], "y_test": y[224:]}
    built, own_cnn = [], O.OwnCNN
    monkeypatch.setattr(O, "OwnCNN", lambda *a, **k: built.append(own_cnn(*a, **k)) or built[-1])
    config = O.OwnConfig(widths=(8, 8, 8), epochs=2, batch_size=64, lr=0.2, whiten_bias_epochs=1)
    with Placement() as p:
        O.fit(config, data, torch.device("cpu"), log=None)
    assert p.mixed == []
    model = built[0]
    assert [n for n, t in (*model.named_parameters(), *model.named_buffers()) if id(t) not in p.placed] == []
