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


def imported_modules(name: str) -> set[str]:
    """The fslib modules `name` imports anywhere in its source (top level, functions, TYPE_CHECKING blocks)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] +
                                ([node.module] if node.module else []))
            else:
                base = node.module
            # `from package import module` imports that module; `from module import name`, the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
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


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_planning_imports_no_torch():
    assert run_python("import sys, fslib.batch.planning; print('torch' in sys.modules, 'transformers' in sys.modules)") \
        .split() == ["False", "False"]


def test_status_of_the_paper_grids_runs_without_torch(tmp_path):
    # torch and transformers made unimportable: any import of them fails the command
    papers = sorted(str(path) for path in (ROOT / "params" / "paper").glob("*.yaml"))
    out = run_python("import sys\n"
                     "sys.modules['torch'] = sys.modules['transformers'] = None\n"
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
