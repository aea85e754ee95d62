"""CITATION.cff and `invoke deploy`: the citation metadata agrees with mkdocs.yml and never goes
stale (no version or date: the site adds the commit), and deploy publishes only a clean commit.
Nothing here builds the site or touches git state; deploy's git and mkdocs calls are mocked."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from invoke import MockContext, Result
from invoke.exceptions import Exit

import tasks
from pipeline import citation

ROOT = Path(__file__).resolve().parents[1]
GH_DEPLOY = "-m mkdocs gh-deploy --strict --force --no-history"


class _ConfigLoader(yaml.SafeLoader):
    """mkdocs.yml may hold `!!python/name:` tags (e.g. for extensions); read them as None."""


_ConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _mkdocs_config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_ConfigLoader)


def _citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_matches_site_and_has_nothing_to_go_stale():
    cff, config = _citation(), _mkdocs_config()
    assert cff["cff-version"] == "1.2.0"
    assert cff["type"] == "software"
    assert cff["title"] == config["site_name"]
    assert cff["authors"] and all(a.get("name") or a.get("family-names") for a in cff["authors"])
    # The version is the commit the site was built from; the site's cite block adds it.
    assert not {"version", "date-released", "commit"} & set(cff)
    # The address is one setting, CITATION.cff's url: mkdocs.yml does not repeat it (the hook sets
    # site_url from it at build time).
    assert cff["url"].startswith("https://") and "site_url" not in config
    if "repository-code" in cff:
        assert cff["repository-code"] == config.get("repo_url")


def test_deploy_dry_run_prints_the_command_and_runs_nothing():
    out = subprocess.run([sys.executable, "-m", "invoke", "deploy", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert GH_DEPLOY in out.stdout
    assert "--remote-name origin --remote-branch gh-pages" in out.stdout
    assert re.search(r"would publish commit [0-9a-f]{40} to origin/gh-pages", out.stdout)


def _fake_run(status: str, remote_ok: bool = True, calls=None, branches=None, current="main"):
    """Deploy's commands answered without running them (git's, mkdocs'); each is recorded.
    branches: ref -> the subject of its last commit (refs that exist)."""
    calls = [] if calls is None else calls
    branches = branches or {}

    def run(args, **kwargs):
        calls.append(list(args))
        out, code = "", 0
        if args[:3] == ["git", "rev-parse", "--abbrev-ref"]:
            out = current + "\n"
        elif args[:2] == ["git", "log"]:
            ref = args[-2]
            out, code = (branches[ref] + "\n", 0) if ref in branches else ("", 128)
        elif args[:2] == ["git", "rev-parse"]:
            out = "0123abcd" * 5 + "\n"
        elif args[:2] == ["git", "status"]:
            out = status
        elif args[:3] == ["git", "remote", "get-url"]:
            code = 0 if remote_ok else 2
        elif "gh-deploy" not in args:
            raise NotImplementedError(args)
        return subprocess.CompletedProcess(args, code, out, "")
    return run, calls


@pytest.mark.parametrize("status, remote_ok, expected", [
    (" M tasks.py\nM  docs/index.md\n", True, "2 tracked file(s) have uncommitted changes"),
    ("", False, "no git remote 'origin'"),
])
def test_deploy_refuses_a_dirty_tree_or_a_missing_remote(status, remote_ok, expected, monkeypatch):
    run, calls = _fake_run(status, remote_ok)
    monkeypatch.setattr(tasks, "_run", run)
    monkeypatch.setattr(citation, "site_url", lambda project=None: "https://someone.github.io/lenet-cifar10/")
    with pytest.raises(Exit) as e:
        tasks.deploy(MockContext())
    assert e.value.code == 1
    message = str(e.value.message)
    assert message.startswith("error: ") and expected in message and "\n" not in message
    assert not any("gh-deploy" in args for args in calls)


def test_deploy_publishes_a_clean_commit_with_an_argument_list(capsys, monkeypatch):
    run, calls = _fake_run("")
    monkeypatch.setattr(tasks, "_run", run)
    monkeypatch.setattr(citation, "site_url", lambda project=None: "https://someone.github.io/lenet-cifar10/")
    tasks.deploy(MockContext(), remote="upstream; touch x", branch="pages")
    command = calls[-1]
    assert command[0] == sys.executable and " ".join(command).count(GH_DEPLOY) == 1
    assert command[-4:] == ["--remote-name", "upstream; touch x", "--remote-branch", "pages"]  # one argument, no shell
    assert "publishing commit " + "0123abcd" * 5 + " to upstream; touch x/pages" in capsys.readouterr().out


@pytest.mark.parametrize("branch, branches, expected", [
    ("main", {}, "--branch main is the branch checked out here"),
    ("release", {"refs/heads/release": "Fix the loader"}, "refs/heads/release holds commits that `mkdocs gh-deploy` did not make"),
    ("docs", {"refs/remotes/origin/docs": "Initial commit"}, "refs/remotes/origin/docs holds commits"),
])
def test_deploy_never_publishes_over_a_source_branch(branch, branches, expected, monkeypatch):
    """Issue 23: `invoke deploy --branch main` force-pushed the site over the source's history."""
    run, calls = _fake_run("", branches=branches)
    monkeypatch.setattr(tasks, "_run", run)
    monkeypatch.setattr(citation, "site_url", lambda project=None: "https://someone.github.io/lenet-cifar10/")
    with pytest.raises(Exit) as e:
        tasks.deploy(MockContext(), branch=branch)
    assert expected in str(e.value.message) and "\n" not in str(e.value.message)
    assert not any("gh-deploy" in args for args in calls)


def test_deploy_over_its_own_branch_and_never_a_foreign_artifacts_tree(monkeypatch, tmp_path):
    run, calls = _fake_run("", branches={"refs/heads/gh-pages": "Deployed 0123abc with MkDocs version: 1.6.1"})
    monkeypatch.setattr(tasks, "_run", run)
    monkeypatch.setattr(citation, "site_url", lambda project=None: "https://someone.github.io/lenet-cifar10/")
    tasks.deploy(MockContext())
    assert any("gh-deploy" in args for args in calls)
    calls.clear()
    monkeypatch.setenv("LENET_ARTIFACTS", str(tmp_path))
    with pytest.raises(Exit, match="LENET_ARTIFACTS is set"):
        tasks.deploy(MockContext())
    assert not any("gh-deploy" in args for args in calls)
