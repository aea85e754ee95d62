"""pipeline.gradcheck: every backward of pipeline.numpy_layers has a passing row, a wrong backward
gets a failing one, the batch-norm figure has one box per BN_GRAPH node and input, and `invoke
layers` writes, records, skips and refuses as it should (in a temporary artifacts/)."""
import matplotlib.colors
import numpy as np
import pytest
from invoke import Context

import tasks
from pipeline.store import Store, sha256_file
from pipeline import gradcheck as G
from pipeline import numpy_bench
from pipeline import numpy_layers as L

# Every backward function of numpy_layers, with the gradients it returns (its docstrings).
BACKWARDS = {
    "affine_backward": ("dx", "dw", "db"), "relu_backward": ("dx",), "dropout_backward": ("dx",),
    "spatial_dropout_backward": ("dx",), "batchnorm_backward": ("dx", "dgamma", "dbeta"),
    "batchnorm_backward_alt": ("dx", "dgamma", "dbeta"), "spatial_batchnorm_backward": ("dx", "dgamma", "dbeta"),
    "conv_backward_naive": ("dx", "dw", "db"), "conv_backward_im2col": ("dx", "dw", "db"),
    "max_pool_backward_naive": ("dx",), "max_pool_backward_fast": ("dx",),
}
WRONG_BY = 1.01  # a gradient 1% off: far outside both thresholds


@pytest.fixture(scope="module")
def rows():
    return G.gradient_checks()


def test_every_backward_is_checked_and_passes(rows):
    assert set(BACKWARDS) == {n for n in dir(L) if n.endswith("_backward") or "_backward_" in n}
    for r in rows:
        assert list(r) == list(G.COLUMNS)
        assert r["passed"] is True, r
        assert r["numeric_rel_error"] < G.GRADCHECK_THRESHOLD == 1e-7
        assert r["torch_rel_error"] < G.TORCH_THRESHOLD
    for backward, grads in BACKWARDS.items():
        per_setting = {}
        for r in rows:
            if r["backward"] == backward:
                per_setting.setdefault(r["layer"], []).append(r["gradient"])
        assert per_setting and all(tuple(g) == grads for g in per_setting.values()), backward
    conv = {r["layer"] for r in rows if r["backward"].startswith("conv_")}
    assert conv == {f"conv {k}, stride {s} pad {p}" for k in ("naive", "im2col") for s, p in ((1, 1), (2, 1))}


def test_shapes_are_the_gradients_shapes(rows):
    by = {(r["layer"], r["gradient"]): r["shape"] for r in rows}
    assert by[("affine", "dx")] == "3x2x4" and by[("affine", "dw")] == "8x5" and by[("affine", "db")] == "5"
    assert by[("conv im2col, stride 2 pad 1", "dw")] == "4x3x3x3"


def test_a_wrong_backward_is_caught(monkeypatch):
    right = L.affine_backward

    def wrong(dout, cache):
        dx, dw, db = right(dout, cache)
        return dx, WRONG_BY * dw, db

    monkeypatch.setattr(L, "affine_backward", wrong)
    rows = G.gradient_checks()
    failed = [(r["backward"], r["gradient"]) for r in rows if not r["passed"]]
    assert failed == [("affine_backward", "dw")]
    row = next(r for r in rows if (r["backward"], r["gradient"]) == ("affine_backward", "dw"))
    assert row["numeric_rel_error"] > 1e-3 and row["torch_rel_error"] > 1e-3


def test_torch_rel_error_is_relative_to_the_largest_value():
    assert G.torch_rel_error(np.array([1.0, 1e-20]), np.array([1.0, 0.0])) == pytest.approx(1e-20)
    assert G.torch_rel_error(np.array([2.0]), np.array([1.0])) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        G.torch_rel_error(np.zeros(2), np.zeros(3))


def test_bn_graph_figure_has_one_box_per_node_and_input():
    fig = G.bn_graph_figure()
    names = [n.node for n in L.BN_GRAPH] + list(L.BN_GRAPH_INPUTS)
    boxes = [t for t in fig.axes[0].texts if (t.get_gid() or "").startswith("node-")]
    assert sorted(t.get_gid() for t in boxes) == sorted(f"node-{n}" for n in names)
    for t in boxes:
        name = t.get_gid().removeprefix("node-")
        first, *rest = t.get_text().split("\n")
        assert first.split()[0] == name
        expression = {n.node: n.expression for n in L.BN_GRAPH}.get(name)
        assert rest == ([expression] if expression else [])
    edges = sum(len(n.inputs) for n in L.BN_GRAPH)
    gradient_labels = [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("dL/d")]
    assert sorted(gradient_labels) == sorted(f"dL/d{i}" for n in L.BN_GRAPH for i in n.inputs)
    arrows = [t.arrow_patch for t in fig.axes[0].texts if getattr(t, "arrow_patch", None) is not None]
    colors = [matplotlib.colors.to_hex(a.get_edgecolor()) for a in arrows]
    assert colors.count(G.FORWARD_COLOR.lower()) == colors.count(G.BACKWARD_COLOR.lower()) == edges
    assert {a.get_linestyle() for a in arrows if a.get_edgecolor() == matplotlib.colors.to_rgba(G.BACKWARD_COLOR)} \
        == {"--"}  # backward arrows dashed


def fake_timings(**_):
    return {"im2col_s": 0.02, "torch_s": 0.01, "naive_s": 3.0, "naive_measured_images": 4,
            "naive_extrapolated": True, "im2col_over_torch": 2.0, "naive_over_torch": 300.0,
            "shape": {"x": [128, 3, 32, 32], "w": [32, 3, 3, 3], "stride": 1, "pad": 1, "dtype": "float32"},
            "repeats": 5, "torch_threads": 2}


@pytest.fixture
def layers_workspace(tmp_path, monkeypatch, rows):
    """tasks.py writing to a temporary artifacts/, with the module's checks and fake timings (fast)."""
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    monkeypatch.setattr(numpy_bench, "conv_timings", fake_timings)
    monkeypatch.setattr(G, "gradient_checks", lambda seed=G.SEED: [dict(r) for r in rows])
    return tmp_path / "artifacts"


def test_layers_task_writes_records_and_skips(layers_workspace, rows, capsys):
    art = layers_workspace
    tasks.layers(Context())
    store = Store(art)
    written = store.read_csv("cs182/gradchecks.csv")
    assert [tuple(r) for r in written][0] == G.COLUMNS and len(written) == len(rows)
    assert all(r["passed"] == "True" for r in written)
    assert store.read_json("cs182/conv_timings.json") == fake_timings()
    assert (art / "cs182/bn_graph.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert (art / "cs182/bn_graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = store.manifest()
    outputs = ["cs182/bn_graph.png", "cs182/bn_graph.svg", "cs182/conv_timings.json", "cs182/gradchecks.csv"]
    assert manifest["tasks"]["layers"]["outputs"] == outputs
    for rel in outputs:
        entry = manifest["artifacts"][rel]
        assert entry["task"] == "layers" and entry["sha256"] == sha256_file(art / rel)
        assert entry["data"] is None and entry["seeds"] == {"seed": G.SEED}
    assert not list(art.rglob("*.tmp"))
    capsys.readouterr()
    tasks.layers(Context())
    assert "layers: up to date" in capsys.readouterr().out
    tasks.layers(Context(), force=True)
    assert "gradient checks passed" in capsys.readouterr().out


def test_layers_task_refuses_a_failing_check(layers_workspace, rows, monkeypatch):
    bad = [dict(r) for r in rows]
    bad[3] = {**bad[3], "passed": False}
    monkeypatch.setattr(G, "gradient_checks", lambda seed=G.SEED: bad)
    with pytest.raises(Exception, match=rf"1 gradient check\(s\) failed \({bad[3]['backward']} dx\)") as e:
        tasks.layers(Context())
    assert getattr(e.value, "code", None) == 1
    assert not layers_workspace.exists()  # nothing written, nothing recorded
