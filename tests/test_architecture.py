"""The shape of fslib's module graph: no import cycles (an import inside a function counts: it is a cycle that only
waits for its call), and planning a batch (`fslib status`, `--dry-run`, `fslib.batch.planning`) loads neither torch nor
transformers."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fslib"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}

# The layers, lowest first: a module may import from a lower layer and from its own package, nothing else (the
# README's "What is where"). Packages in one layer do not import each other, except the pairs in ALLOWED_ACROSS.
LAYERS: list[tuple[str, ...]] = [
    ("fslib", "fslib.core"),  # the package's version; languages, tasks, methods' names, files, progress, timing
    ("fslib.formats",),  # the corpora's files: XTREME and UD readers, data errors, stable seeds
    ("fslib.data", "fslib.store"),  # datasets for the engine; the run store (config, results, ledger)
    ("fslib.prepare",),  # the offline benchmark and the offline encoder, built before a batch
    ("fslib.engine",),  # one run: training, stages, methods, surgery, evaluation, checkpoints
    ("fslib.batch", "fslib.analysis"),  # running grids; analysing their results
    ("fslib.cli", "fslib.config", "fslib.runner", "fslib.results", "fslib.models"),  # CLI, public names
]
ALLOWED_ACROSS = {("fslib.batch", "fslib.analysis")}  # a batch builds the reports when it ends
# Read by `fslib status` and batch planning, and by light tools: no torch, transformers or datasets, even inside a
# function
LIGHT_PACKAGES = ("fslib.core", "fslib.formats", "fslib.store")
HEAVY = ("torch", "transformers", "datasets")


def package_of(module: str) -> str:
    """The layer table's entry a module belongs to: its longest listed prefix."""
    entries = [entry for layer in LAYERS for entry in layer]
    # "fslib" is the package's __init__ only: a module under no listed package must be added to the table
    owner = max((entry for entry in entries
                 if module == entry or (entry != "fslib" and module.startswith(entry + "."))), key=len, default=None)
    if owner is None:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py's LAYERS: add it there")
    return owner


def layer_of(module: str) -> int:
    owner = package_of(module)
    return next(index for index, layer in enumerate(LAYERS) if owner in layer)


def imports_of(source: str, name: str, is_package: bool) -> list[tuple[str, int]]:
    """(dotted name, line) of every import in `source` (top level, functions, TYPE_CHECKING blocks), relative
    imports resolved against the module `name`; `from a import b` gives a.b."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] +
                                ([node.module] if node.module else []))
            else:
                base = node.module
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def imported_modules(name: str) -> set[str]:
    """The fslib modules `name` imports anywhere in its source (top level, functions, TYPE_CHECKING blocks)."""
    path = MODULES[name]
    found = set()
    for target, _ in imports_of(path.read_text(), name, path.name == "__init__.py"):
        while target and target not in MODULES:  # `fslib.x.name` -> the module fslib.x
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_reader_sees_imports_inside_functions():
    assert "fslib.prepare.mini.model" in imported_modules("fslib.batch.planning")  # imported inside plan()
    assert {"fslib.prepare.mini", "fslib.data"} <= imported_modules("fslib.prepare.mini.model")


def test_no_import_cycles_between_fslib_modules():
    graph = {name: imported_modules(name) for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def layer_violations(name: str, imports: list[tuple[str, int]]) -> list[str]:
    """The imports of module `name` against the layer table, each as 'module:line imports target (why)'."""
    own, problems = package_of(name), []
    for target, line in imports:
        if target.split(".")[0] in HEAVY and own in LIGHT_PACKAGES:
            problems.append(f"{name}:{line} imports {target} ({own} must load without torch or datasets)")
        if target != "fslib" and not target.startswith("fslib."):
            continue
        while target not in MODULES and "." in target:  # fslib.x.name -> the module fslib.x
            target = target.rpartition(".")[0]
        if target == name or target not in MODULES:
            continue
        other = package_of(target)
        if other == own or (own, other) in ALLOWED_ACROSS:
            continue
        if layer_of(target) >= layer_of(name):
            problems.append(f"{name}:{line} imports {target} (layer {layer_of(target)}, {other}; {name} is in "
                            f"layer {layer_of(name)}, {own}: only lower layers)")
    return problems


def module_violations(name: str) -> list[str]:
    path = MODULES[name]
    return layer_violations(name, imports_of(path.read_text(), name, path.name == "__init__.py"))


def test_every_module_is_in_a_layer():
    for name in MODULES:
        package_of(name)


def test_no_module_imports_against_the_layers():
    problems = [problem for name in sorted(MODULES) for problem in module_violations(name)]
    assert not problems, "imports against the layer table:\n" + "\n".join(problems)


def test_the_layer_check_sees_upward_imports_inside_functions():
    source = "def f():\n    from fslib.engine.training import train\n"
    assert layer_violations("fslib.store.ledger", imports_of(source, "fslib.store.ledger", False)) == [
        "fslib.store.ledger:2 imports fslib.engine.training (layer 4, fslib.engine; fslib.store.ledger is in layer 2, "
        "fslib.store: only lower layers)"]
    # across one layer: analysis does not import batch; batch may import analysis (its reports)
    assert layer_violations("fslib.analysis.reports", [("fslib.batch.params", 3)])
    assert not layer_violations("fslib.batch.planning", [("fslib.analysis.reports", 3)])
    # the shims of the public names are for users, not for fslib's own modules
    assert layer_violations("fslib.engine.stages", [("fslib.config.RunConfig", 9)])


@pytest.mark.parametrize("heavy", ["torch", "datasets", "transformers.utils"])
def test_a_store_module_importing_torch_or_datasets_fails(heavy):
    source = f"import json\n\ndef load():\n    import {heavy}\n"
    assert layer_violations("fslib.store.results", imports_of(source, "fslib.store.results", False)) == [
        f"fslib.store.results:4 imports {heavy} (fslib.store must load without torch or datasets)"]
    assert layer_violations("fslib.store.ledger", [(f"{heavy}.x", 1)])
    assert not layer_violations("fslib.engine.training", [(heavy, 1)])  # the engine may


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_planning_imports_no_torch():
    loaded = run_python("import sys, fslib.batch.planning\n"
                        "print('torch' in sys.modules, 'transformers' in sys.modules)")
    assert loaded.split() == ["False", "False"]


def test_status_of_the_paper_grids_runs_without_torch_or_datasets(tmp_path):
    # torch, transformers and datasets made unimportable: any import of them fails the command
    papers = sorted(str(path) for path in (ROOT / "params" / "paper").glob("*.yaml"))
    out = run_python("import sys\n"
                     "sys.modules['torch'] = sys.modules['transformers'] = sys.modules['datasets'] = None\n"
                     "from fslib.cli import main\n"
                     f"assert main(['status', *{papers!r}]) == 0\n")
    assert "runs:" in out and "source models:" in out


def test_every_registered_method_has_its_implementation():
    from fslib.engine.methods import METHODS, get_method
    from fslib.engine.methods.base import Method

    for name in METHODS:
        method = get_method(name)
        assert isinstance(method, Method) and method.name == name
    with pytest.raises(ValueError, match="valid methods: zero-shot, ord-FS"):
        get_method("ord-fs")
