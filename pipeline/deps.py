"""The code a stage's key hashes, read off the import graph (issue 22, item 3).

A stage's key (pipeline/store.py `stage_key`) hashes the contents of the code that computes its
outputs. That list used to be kept by hand and drifted: training imported `contract.py`,
`parallel.py` and `sweep.py`, which the list left out, so editing them retrained nothing. Here it
is computed from the source, statically (ast; nothing is imported or run):

- A stage starts at its invoke task in tasks.py (`STAGE_TASKS`). The task's own imports of
  `pipeline` modules, and those of the tasks.py helpers it calls, are its roots.
- A module reached by an import counts whole: its file, and every `pipeline` module it imports,
  at the top or inside a function (a function-level import runs when the function does, and we do
  not know statically which functions a caller uses).
- Two files are hubs, followed function by function, because they serve every stage: tasks.py
  (orchestration only: it is not hashed) and pipeline/stages.py (it shapes every stage's outputs:
  hashed whole, as before). From a hub only the functions a stage calls are followed (`S.name`
  through the module's alias, or a bare call of a function of the same hub), with the hub's own
  top-level imports. So the training key holds what training runs, and not the filters code that
  stages.py imports for another stage.

Computing the key is not computing the outputs: `code_files` itself (and this module) is left
out of every key. Pure Python, no torch.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKS = "tasks"                # tasks.py: a hub, not hashed (it only orchestrates)
STAGES = "pipeline.stages"     # a hub, hashed whole: it shapes every stage's outputs
HUBS = (TASKS, STAGES)
NOT_FOLLOWED = {"code_files"}  # key machinery: it names the code, it computes no output
STAGE_TASKS = {"data": "data", "train": "train", "train-own": "train_own", "plots": "plots",
               "answers": "answers", "layers": "layers", "filters": "filters"}


def module_file(name: str, repo: Path = REPO) -> Path | None:
    """The source file of a module of this repository (`pipeline.x` -> pipeline/x.py or
    pipeline/x/__init__.py, `tasks` -> tasks.py), or None for anything else (torch, numpy...)."""
    base = Path(repo, *name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _tree(path: Path) -> ast.Module:
    return _parse(path.read_text(encoding="utf-8"))


@cache  # by the text, so an edited file is parsed again
def _parse(text: str) -> ast.Module:
    return ast.parse(text)


def _with_packages(name: str) -> list[str]:
    """A module and the packages above it, whose __init__ runs when it is imported."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _imports(nodes, repo: Path) -> tuple[set[str], dict[str, str]]:
    """(modules of this repository imported in `nodes`, their local aliases: name -> module)."""
    found, alias = set(), {}
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Import):
                for a in n.names:
                    if module_file(a.name, repo):
                        found.update(_with_packages(a.name))
                        if a.asname:  # import pipeline.x as y
                            alias[a.asname] = a.name
                        else:  # import pipeline.x binds `pipeline`
                            alias[a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0 and module_file(n.module, repo):
                found.update(_with_packages(n.module))
                for a in n.names:
                    sub = f"{n.module}.{a.name}"
                    if module_file(sub, repo):  # `from pipeline import stages as S`: a module
                        found.add(sub)
                        alias[a.asname or a.name] = sub
                    elif n.module in HUBS:  # `from pipeline.stages import f`: one hub function
                        alias[a.asname or a.name] = f"{n.module}:{a.name}"
    return found, alias


def _functions(module: str, repo: Path) -> dict[str, ast.AST]:
    return {n.name: n for n in _tree(module_file(module, repo)).body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _walk(start: list[str], repo: Path) -> set[str]:
    """Every module (`pipeline.x`) and hub function (`pipeline.stages:f`) reachable from `start`."""
    seen, todo = set(), list(start)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        module, _, func = node.partition(":")
        if module in HUBS and not func:  # a hub imported as a module: its top-level imports only
            top = [n for n in _tree(module_file(module, repo)).body
                   if isinstance(n, (ast.Import, ast.ImportFrom))]
            todo += [m for m in _imports(top, repo)[0] if m not in HUBS]
            continue
        if not func:  # an ordinary module: all of it
            todo += list(_imports([_tree(module_file(module, repo))], repo)[0])
            continue
        if func in NOT_FOLLOWED:
            continue
        body = _functions(module, repo)[func]
        found, alias = _imports([body], repo)
        todo += [module] + [m for m in found if m not in HUBS]
        # names the function binds itself (parameters, assignments, imports) shadow the hub's
        args = body.args
        bound = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a}
        bound |= {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        local = {k: v for k, v in _functions(module, repo).items() if k not in bound | set(alias)}
        for n in ast.walk(body):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and alias.get(n.value.id) in HUBS:
                hub = alias[n.value.id]
                if n.attr in _functions(hub, repo):  # S.train_outputs
                    todo += [hub, f"{hub}:{n.attr}"]
            elif isinstance(n, ast.Name):
                if n.id in local and n.id != func:  # a helper of the same hub
                    todo.append(f"{module}:{n.id}")
                elif ":" in alias.get(n.id, ""):  # from pipeline.stages import f
                    todo += [alias[n.id].split(":")[0], alias[n.id]]
    return seen


def code_files(stage: str, repo: Path = REPO) -> list[Path]:
    """The files whose contents make up `stage`'s key, relative to the repository, sorted:
    pipeline/stages.py and every module the stage's task reaches (see the module docstring)."""
    if stage not in STAGE_TASKS:
        raise KeyError(f"no stage {stage!r}; stages: {', '.join(STAGE_TASKS)}")
    reached = _walk([f"{TASKS}:{STAGE_TASKS[stage]}"], repo) | {STAGES}
    modules = {n for n in reached if ":" not in n and n != TASKS and n != __name__}
    return sorted(module_file(m, repo).relative_to(repo) for m in modules)
