"""Import hygiene: what each part of genlv_jax loads, and no import cycles among its modules.

The layering (see the package docstrings): `models` is jax/flax only; `tasks` is host code
(no jax); `data` never loads flax; nothing loads TensorFlow or PyTorch at import time —
TensorFlow comes only with clu's metric writers, made in `training.writers.create_writer`, and
torch only inside the functions of `bridge`. Each import check runs in a fresh interpreter and
looks at `sys.modules` afterwards; a hook on the import system records, for the failure message,
which line of genlv_jax first pulled a forbidden package in.
"""

import ast
import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "genlv_jax"

HEAVY = ("tensorflow", "torch")

# The modules run as programs (`python -m genlv_jax.X`): all top-level modules are checked, these
# must be among them.
ENTRY_POINTS = ("train", "infer", "evaluate", "finetune", "convert", "summary", "demo", "app")


def _modules_in(subpackage: str = "") -> list[str]:
  """The modules of `genlv_jax[.subpackage]` (its own .py files, not deeper), found on disk so
  that a new one is covered too; `__init__` and `__main__` left out."""
  prefix = ".".join(p for p in (PACKAGE, subpackage) if p)
  directory = os.path.join(REPO, *prefix.split("."))
  names = sorted(f[:-3] for f in os.listdir(directory)
                 if f.endswith(".py") and f not in ("__init__.py", "__main__.py"))
  return [f"{prefix}.{name}" for name in names]


# Runs in the child: imports argv[1]'s modules in order, then prints, for each forbidden top-level
# package found in sys.modules, the requested module whose import brought it in and the chain of
# genlv_jax lines (then the library line) that imported it first.
_PROBE = textwrap.dedent("""
    import importlib, importlib.abc, json, os, sys, traceback
    modules, forbidden = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
    preloaded = sorted(forbidden & {name.partition(".")[0] for name in sys.modules})
    chains, current = {}, [None]

    class Spy(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path=None, target=None):
        root = name.partition(".")[0]
        stack = traceback.extract_stack()[:-1]
        # A real import (not `importlib.util.find_spec`, which only asks whether it exists).
        importing = any(f.name == "_find_and_load_unlocked" for f in stack[-3:])
        if root in forbidden and root not in chains and importing:
          frames = [f for f in stack if not f.filename.startswith("<")]
          lines = [f"{os.path.relpath(f.filename)}:{f.lineno}" for f in frames
                   if "genlv_jax" in f.filename]
          if frames and "genlv_jax" not in frames[-1].filename:
            lines.append(f"{frames[-1].filename}:{frames[-1].lineno}")
          chains[root] = {"while importing": current[0], "chain": lines}
        return None

    sys.meta_path.insert(0, Spy())
    for module in modules:
      current[0] = module
      importlib.import_module(module)
    loaded = sorted(forbidden & {name.partition(".")[0] for name in sys.modules})
    print(json.dumps({"preloaded": preloaded,
                      "loaded": {root: chains.get(root) for root in loaded}}))
""")


def _child_env() -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
  return env


def loaded_by_import(modules, forbidden) -> dict:
  """Imports `modules` in a fresh interpreter; returns {forbidden package: how it got loaded}."""
  out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(modules)),
                        json.dumps(list(forbidden))],
                       cwd=REPO, env=_child_env(), capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert not result["preloaded"], f"loaded before any genlv_jax import: {result['preloaded']}"
  return result["loaded"]


def _explain(loaded: dict) -> str:
  return "\n".join(f"{root}: first imported while importing {how and how['while importing']},"
                   f" via {' -> '.join(how['chain']) if how else '?'}"
                   for root, how in loaded.items())


CASES = {
    "models": (("genlv_jax.models",), ("tensorflow", "grain", "torch", "clu")),
    "tasks": (("genlv_jax.tasks", *_modules_in("tasks")), ("tensorflow", "grain", "torch", "jax")),
    "data-package": (("genlv_jax.data",), ("flax", *HEAVY)),
    # input_pipeline, records, image_sources, paired_sources, image_io, task_selection, tfds_source
    "data-modules": (_modules_in("data"), ("flax", *HEAVY)),
    "bridge": (("genlv_jax.bridge", "genlv_jax.bridge.convert", "genlv_jax.bridge.torch_io"),
               HEAVY),
    "api-training-entry-points": (
        ("genlv_jax", "genlv_jax.api", "genlv_jax.evaluation", "genlv_jax.inference.runner",
         "genlv_jax.training.trainer", "genlv_jax.training.checkpointing",
         "genlv_jax.training.writers", *_modules_in()),
        HEAVY),
    # The prepared-data readers, the prepare CLI's parsing and `evaluate --protocol` load no
    # Beam (the `prepare` extra) and the readers no flax: only `prepare.pipeline` imports Beam.
    "prepare-without-beam": (
        ("genlv_jax.data.prepare", "genlv_jax.data.prepare.__main__",
         *[m for m in _modules_in("data.prepare") if not m.endswith(".pipeline")]),
        ("apache_beam", "flax", *HEAVY)),
    "evaluate-protocol-without-beam": (
        ("genlv_jax.evaluation.protocol", "genlv_jax.evaluate", "genlv_jax.data.input_pipeline"),
        ("apache_beam", *HEAVY)),
    # The web app's Gradio (an optional extra) is imported when the page is built, not before.
    "app-without-gradio": (
        ("genlv_jax.app", "genlv_jax.api", "genlv_jax.infer", "genlv_jax.inference.runner"),
        ("gradio", "gradio_client", *HEAVY)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_loads_no_forbidden_package(case):
  modules, forbidden = CASES[case]
  loaded = loaded_by_import(modules, forbidden)
  assert not loaded, f"`import {', '.join(modules)}` loaded:\n{_explain(loaded)}"


def test_entry_points_are_among_the_checked_modules():
  checked = set(CASES["api-training-entry-points"][0])
  assert {f"{PACKAGE}.{name}" for name in ENTRY_POINTS} <= checked


def test_the_probe_reports_where_a_forbidden_package_comes_from():
  """The probe itself: importing clu's metric writers does load TensorFlow, and says via what."""
  loaded = loaded_by_import(["clu.metric_writers"], ["tensorflow"])
  assert set(loaded) == {"tensorflow"}
  assert loaded["tensorflow"]["while importing"] == "clu.metric_writers"
  assert any("clu" in line for line in loaded["tensorflow"]["chain"]), loaded


# The metric writers: quiet and working.

_WRITER_SNIPPET = ("from genlv_jax.training.writers import create_writer; import tempfile; "
                   "w = create_writer(tempfile.mkdtemp(), True); w.write_scalars(1, {'a': 1.0}); "
                   "w.close()")

_WRITER_CHECK = textwrap.dedent("""
    import json, os, tempfile
    from genlv_jax.training.writers import create_writer
    workdir = tempfile.mkdtemp()
    writer = create_writer(workdir, True)
    writer.write_scalars(3, {"train/loss": 0.5})
    writer.close()
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      print(json.dumps([json.loads(line) for line in f]))
    print(json.dumps(sorted(name.split(".")[0] for name in os.listdir(workdir))))
""")


def _run_quietly(code: str) -> subprocess.CompletedProcess:
  env = _child_env()
  # The writers must silence TensorFlow by themselves, not thanks to the caller's environment.
  for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):
    env.pop(name, None)
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return out


# The trainer's profiling hook comes from clu.periodic_actions (TensorFlow too).
_TRAINER_CLU_SNIPPET = ("import genlv_jax.training.trainer; from genlv_jax.training import writers; "
                        "writers.periodic_actions(); import sys; assert 'tensorflow' in sys.modules")


@pytest.mark.parametrize("code", [_WRITER_SNIPPET, _TRAINER_CLU_SNIPPET],
                         ids=["create_writer", "trainer-then-clu"])
def test_tensorflow_loads_without_startup_lines(code):
  err = _run_quietly(code).stderr
  for text in ("oneDNN", "tensorflow/core", "cpu_feature_guard", "This TensorFlow binary"):
    assert text not in err, err[-3000:]


def test_create_writer_writes_metrics_jsonl_and_tensorboard_events():
  lines = _run_quietly(_WRITER_CHECK).stdout.strip().splitlines()
  assert json.loads(lines[-2]) == [{"step": 3, "train/loss": 0.5}]
  assert json.loads(lines[-1]) == ["events", "metrics"]


# Import cycles, from the source: module-level imports only.

def _module_name(root: str, path: str, package: str) -> str:
  rel = os.path.relpath(path, root)[:-3].split(os.sep)
  if rel[-1] == "__init__":
    rel = rel[:-1]
  return ".".join(rel) if rel else package


def _is_type_checking(test: ast.expr) -> bool:
  return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
          or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _module_level_imports(tree: ast.Module):
  """Import statements run when the module is imported: at top level or inside top-level
  if/try/with blocks and class bodies, not inside functions nor under `if TYPE_CHECKING:`."""
  pending = list(tree.body)
  while pending:
    node = pending.pop(0)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      yield node
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
      continue
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
      pending.extend(node.orelse)
    else:
      pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)
                     or isinstance(child, ast.excepthandler))


def import_graph(root: str, package: str = PACKAGE) -> dict[str, set[str]]:
  """{module: the `package` modules it imports at module level}, from the sources under
  `root/package`. `from a.b import c` means module `a.b.c` where that is a module, else `a.b`;
  a package's `__init__.py` is the package module; parents of an imported module are not edges."""
  files = {}
  for directory, _, names in os.walk(os.path.join(root, package)):
    for name in names:
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        files[_module_name(root, path, package)] = path
  modules = set(files)
  graph = {}
  for module, path in files.items():
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), filename=path)
    is_package = path.endswith("__init__.py")
    edges = set()
    for node in _module_level_imports(tree):
      if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
      else:
        base = node.module or ""
        if node.level:
          parts = module.split(".")
          anchor = parts if is_package else parts[:-1]
          anchor = anchor[:len(anchor) - (node.level - 1)]
          base = ".".join(anchor + ([base] if base else []))
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                   for alias in node.names]
      edges.update(t for t in targets if t in modules and t != module)
    graph[module] = edges
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of `graph` as [m0, m1, …, m0], or None."""
  state = {}  # absent: unvisited; 1: on the current path; 2: done
  for start in sorted(graph):
    if start in state:
      continue
    path, stack = [start], [iter(sorted(graph[start]))]
    state[start] = 1
    while stack:
      nxt = next(stack[-1], None)
      if nxt is None:
        state[path.pop()] = 2
        stack.pop()
      elif state.get(nxt) == 1:
        return path[path.index(nxt):] + [nxt]
      elif nxt not in state:
        state[nxt] = 1
        path.append(nxt)
        stack.append(iter(sorted(graph.get(nxt, ()))))
  return None


def test_genlv_jax_has_no_import_cycle():
  graph = import_graph(REPO)
  cycle = find_cycle(graph)
  assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_import_graph_sees_the_real_imports():
  """Guards the cycle test against an empty or misread graph."""
  graph = import_graph(REPO)
  assert {"genlv_jax", "genlv_jax.models", "genlv_jax.training.trainer"} <= set(graph)
  assert "genlv_jax.training.writers" in graph["genlv_jax.training.trainer"]
  assert any(target.startswith("genlv_jax.models") for target in graph["genlv_jax.api"])


def _write(root, relpath: str, text: str) -> None:
  path = root / relpath
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(textwrap.dedent(text))


def test_import_graph_and_cycle_finder_on_a_small_package(tmp_path):
  _write(tmp_path, "pkg/__init__.py", "")
  _write(tmp_path, "pkg/a.py", "from pkg.sub import b\nimport pkg.c as c\n")
  _write(tmp_path, "pkg/sub/__init__.py", "from .b import helper\n")
  _write(tmp_path, "pkg/sub/b.py", """
      import os
      from typing import TYPE_CHECKING
      if TYPE_CHECKING:
        from pkg import a
      def helper():
        from pkg import a
      """)
  _write(tmp_path, "pkg/c.py", "try:\n  from pkg.sub import helper\nexcept ImportError:\n  pass\n")
  graph = import_graph(str(tmp_path), "pkg")
  assert graph == {"pkg": set(), "pkg.a": {"pkg.sub.b", "pkg.c"}, "pkg.sub": {"pkg.sub.b"},
                   "pkg.sub.b": set(), "pkg.c": {"pkg.sub"}}
  assert find_cycle(graph) is None

  _write(tmp_path, "pkg/sub/b.py", "from pkg.a import something\n")
  graph = import_graph(str(tmp_path), "pkg")
  assert graph["pkg.sub.b"] == {"pkg.a"}
  cycle = find_cycle(graph)
  assert cycle is not None and cycle[0] == cycle[-1], cycle
  assert all(b in graph[a] for a, b in zip(cycle, cycle[1:])), cycle
  assert {"pkg.a", "pkg.sub.b"} <= set(cycle)
