"""The store and the artifacts contract: atomic writes, one writer per file, verified reads with
value checks, the manifest under a lock, keys that do not depend on where the checkout lives."""
import json
import multiprocessing
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import contract
from pipeline.store import (Store, StoreError, atomic_path, clean_litter, code_hash, git_state,
                            sha256_file, stage_key, write_bytes_atomic)

ROOT = Path(__file__).resolve().parents[1]
ROW = {"variant": "lenet_plain", "seed": 0, "epochs": 20, "preprocess": "rescale", "batch_size": 128,
       "lr": 0.001, "test_accuracy": 0.6116, "test_loss": 1.1, "best_val_accuracy": 0.61,
       "best_val_epoch": 18, "final_train_loss": 0.96, "final_train_accuracy": 0.66, "train_seconds": 100.0,
       "eval_seconds": 10.0, "images_per_second": 8000.0, "params": 62006, "device": "cpu", "official_data": False}


def written(tmp_path, task="train", rows=(ROW,)):
    store = Store(tmp_path, task=task)
    store.record("train:x", "k", [store.write("lenet/summary.csv", list(rows))], {"config": {}})
    return Store(tmp_path)


# --- atomic files -----------------------------------------------------------------------------

def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.json"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_killed_writer_leaves_old_file_and_the_litter_is_cleaned(tmp_path):
    target = tmp_path / "big.csv"
    write_bytes_atomic(target, b"old\n")
    code = (f"import time; from pipeline.store import atomic_path\n"
            f"with atomic_path({str(target)!r}) as tmp:\n"
            f"    open(tmp, 'w').write('partial'); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert target.read_text() == "old\n"  # never the partial content
    assert len(clean_litter(tmp_path)) == 1 and [p.name for p in tmp_path.iterdir()] == ["big.csv"]


def test_same_bytes_are_not_rewritten(tmp_path):
    p = tmp_path / "a.json"
    assert write_bytes_atomic(p, b"{}") and not write_bytes_atomic(p, b"{}")
    assert p.stat().st_mode & 0o044 == 0o044  # ordinary shared files, not mkstemp's 0600


# --- the contract ---------------------------------------------------------------------------------

def test_artifacts_md_is_generated_from_the_contract():
    assert (ROOT / "ARTIFACTS.md").read_text() == contract.markdown(), "run `invoke contract`"


def test_every_committed_artifact_has_exactly_one_writer_and_the_manifest_agrees():
    art = ROOT / "artifacts"
    manifest = json.loads((art / contract.MANIFEST).read_text())
    if (ROOT / ".git").exists():  # the committed files (locks are not committed)
        files = subprocess.run(["git", "ls-files", "artifacts"], cwd=ROOT, capture_output=True,
                               text=True).stdout.split()
        files = [f.removeprefix("artifacts/") for f in files]
    else:
        files = [p.relative_to(art).as_posix() for p in art.rglob("*") if p.is_file()
                 and not p.name.startswith(".")]
    for rel in files:
        matches = [a for a in contract.CONTRACT if a.regex.match(rel)]
        assert len(matches) == 1, (rel, [a.pattern for a in matches])
        if rel != contract.MANIFEST:
            assert manifest["artifacts"][rel]["task"] == matches[0].writer, rel
    for stage, record in manifest["tasks"].items():  # a stage writes only files its task owns
        assert all(contract.writer_of(rel) == record["task"] for rel in record["outputs"]), stage


def test_patterns_name_distinct_files():
    samples = {"lenet/lenet_plain/log.csv", "lenet/summary.csv", "lenet/seed_runs.csv", "plots/samples.png",
               "own_cnn/own_cnn_log.svg", "cs182/dropout/summary.csv", "cs182/filters.json"}
    for rel in samples:
        assert contract.spec_of(rel) is not None, rel
    assert contract.spec_of("lenet/a/b/log.csv") is None and contract.spec_of("notes.txt") is None


def test_a_task_cannot_write_another_tasks_file(tmp_path):
    with pytest.raises(AssertionError, match="written by `invoke train`"):
        Store(tmp_path, task="seeds").write("lenet/summary.csv", [ROW])
    with pytest.raises(AssertionError, match="not in the artifacts contract"):
        Store(tmp_path, task="train").write("lenet/notes.txt", b"x")
    with pytest.raises(AssertionError, match="no column"):  # never write what a reader refuses
        Store(tmp_path, task="train").write("lenet/summary.csv", ([*contract.SUMMARY_COLUMNS][1:], [ROW]))


# --- verified reads ------------------------------------------------------------------------------

def test_read_checks_sha_columns_and_values(tmp_path):
    store = written(tmp_path)
    assert store.read_csv("lenet/summary.csv")[0]["test_accuracy"] == "0.6116"
    path = tmp_path / "lenet/summary.csv"
    # a hand edit to a percentage, with the manifest re-hashed as a tool would: refused by value
    path.write_text(path.read_text().replace("0.6116", "63.5"))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["artifacts"]["lenet/summary.csv"]["sha256"] = sha256_file(path)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"line 2: test_accuracy = '63.5' is not a fraction in \[0, 1\]"):
        Store(tmp_path).read_csv("lenet/summary.csv")
    # without the re-hash, the changed file itself is refused
    path.write_text(path.read_text().replace("63.5", "0.9"))
    with pytest.raises(StoreError, match="has changed since `invoke train` wrote it"):
        Store(tmp_path).read_csv("lenet/summary.csv")


@pytest.mark.parametrize("text,says", [("{\"artifacts\": {", "is not valid JSON"), ("[]", "is not a manifest"),
                                        ("\xff\xfe", "is not valid JSON")])
def test_a_corrupt_manifest_is_one_line_saying_how_to_recover(tmp_path, text, says):
    written(tmp_path)
    (tmp_path / "manifest.json").write_bytes(text.encode("latin1"))
    with pytest.raises(StoreError) as e:
        Store(tmp_path).read_csv("lenet/summary.csv")
    assert says in str(e.value) and "git checkout" in str(e.value) and "\n" not in str(e.value)


def test_missing_and_unrecorded_files_name_their_task(tmp_path):
    with pytest.raises(StoreError, match=r"lenet/seeds.json is missing; run `invoke seeds`"):
        Store(tmp_path).read_json("lenet/seeds.json")
    (tmp_path / "bench.json").write_text("{}")
    with pytest.raises(StoreError, match="not recorded .* run `invoke bench`"):
        Store(tmp_path).read_json("bench.json")


# --- the manifest ------------------------------------------------------------------------------------

def test_record_then_skip_then_redo(tmp_path):
    store = Store(tmp_path, task="bench")
    key = stage_key({"epochs": 2}, ["pipeline/store.py"])
    assert not store.is_up_to_date("bench", key)
    bench = {k: {} for k in contract.spec_of("bench.json").keys}
    store.record("bench", key, [store.write("bench.json", {**bench, "device": "cpu", "torch": "x", "threads": 1})],
                 {"config": {"epochs": 2}})
    entry = store.entry("bench.json")
    assert entry["task"] == "bench" and entry["config"] == {"epochs": 2} and "commit" in entry
    assert store.is_up_to_date("bench", key)
    assert not store.is_up_to_date("bench", stage_key({"epochs": 3}, ["pipeline/store.py"]))
    (tmp_path / "bench.json").write_text("edited by hand")
    assert not store.is_up_to_date("bench", key)


def test_recording_the_same_files_again_changes_nothing(tmp_path):
    written(tmp_path)
    before = (tmp_path / "manifest.json").read_bytes()
    written(tmp_path)  # same bytes, same provenance: same entry, commit and time kept
    assert (tmp_path / "manifest.json").read_bytes() == before


def _record_many(root: str, i: int) -> None:
    store = Store(Path(root), task="layers")
    for j in range(15):
        rel = f"cs182/bn_graph.{'svg' if i == 0 else 'png'}"
        store.record(f"stage{i}", "k", [store.write(rel, f"{i}-{j}".encode())], {"config": {"i": i}})


def test_concurrent_stages_lose_no_record(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_many, args=(str(tmp_path), i)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["tasks"]) == {"stage0", "stage1"}
    assert set(manifest["artifacts"]) == {"cs182/bn_graph.svg", "cs182/bn_graph.png"}
    for rel, entry in manifest["artifacts"].items():
        assert entry["sha256"] == sha256_file(tmp_path / rel)


# --- keys that travel ----------------------------------------------------------------------------------

def test_code_hash_names_files_relative_to_the_repository(tmp_path):
    copy = tmp_path / "elsewhere"
    (copy / "pipeline").mkdir(parents=True)
    shutil.copy(ROOT / "pipeline" / "store.py", copy / "pipeline" / "store.py")
    here = code_hash([ROOT / "pipeline" / "store.py"], ROOT)
    assert here == code_hash([Path("pipeline/store.py")], ROOT)
    assert here == code_hash([copy / "pipeline" / "store.py"], copy)  # another checkout, same key
    (copy / "pipeline" / "store.py").write_text("# changed\n")
    assert here != code_hash([copy / "pipeline" / "store.py"], copy)


def test_no_stage_key_uses_machine_specific_settings():
    """Keys hash code, config and data; the device name, threads, paths and times stay out."""
    import tasks
    from pipeline import stages
    from pipeline.train import TrainConfig
    info = {"md5s": {"x": "1"}, "split": {"seed": 0}}
    a = stages.train_key_config(TrainConfig(device="auto"), info, "d" * 64)
    assert a == stages.train_key_config(TrainConfig(device="cpu"), info, "d" * 64)
    assert not re.search(r"threads|/work|/tmp|seconds", json.dumps(a))
    assert str(tasks.ROOT) not in json.dumps(a)


def test_git_state_reports_a_commit():
    state = git_state(ROOT)
    assert set(state) == {"commit", "dirty"}
    assert state["commit"] == "unknown" or len(state["commit"]) == 40


def test_committed_artifacts_are_not_git_ignored():
    """Every file the manifest lists must reach a fresh clone."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    manifest = json.loads((ROOT / "artifacts" / "manifest.json").read_text())
    paths = [f"artifacts/{rel}" for rel in manifest["artifacts"]]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert paths and ignored == []


# --- derived files record their sources ----------------------------------------------------------

def test_a_derived_file_records_its_sources_and_goes_stale_when_they_change(tmp_path):
    store = Store(tmp_path, task="train")
    store.record("train:x", "k", [store.write("lenet/summary.csv", [ROW])], {"config": {}})
    verify = Store(tmp_path, task="verify")
    rows = [{"variant": "lenet_plain", "metric": "test_accuracy", "committed": 0.6116, "rerun": 0.6116,
             "difference": 0.0, "seeds_sd": "", "verdict": "identical"}]
    verify.record("verify", "k", [verify.write("verify.csv", rows)], {"config": {}})
    entry = Store(tmp_path).entry("verify.csv")
    assert entry["sources"] == {"lenet/summary.csv": sha256_file(tmp_path / "lenet/summary.csv")}
    assert Store(tmp_path).stale() == []
    # a new reference run: verify.csv now compares another run than the one here
    store.record("train:x", "k2", [store.write("lenet/summary.csv", [{**ROW, "test_accuracy": 0.6201}])],
                 {"config": {}})
    assert Store(tmp_path).stale() == [("verify.csv", "was derived from another lenet/summary.csv than the one here")]
    verify.record("verify", "k", [verify.write("verify.csv", rows)], {"config": {}})  # derived again
    assert Store(tmp_path).stale() == []


def test_downstream_follows_the_contract_in_order():
    present = ["lenet/summary.csv", "lenet/seed_runs.csv", "lenet/seeds.json", "verify.csv", "verify.json",
               "bench.json", "cs182/filters.json", "lenet/lenet_plain/log.csv", "lenet/findings.json"]
    order = contract.downstream(["lenet/summary.csv"], present)
    assert set(order) == {"lenet/seeds.json", "verify.csv", "verify.json", "bench.json", "lenet/findings.json"}
    assert order.index("lenet/seeds.json") < order.index("verify.csv")  # verify uses the seeds' spread
    assert contract.downstream(["cs182/filters.json"], present) == []
    # every pattern a derivation names is one of the contract's
    for target, sources in contract.DERIVED_FROM.items():
        assert any(a.pattern == target for a in contract.CONTRACT), target
        for s in sources:
            assert any(a.pattern == s for a in contract.CONTRACT), s
