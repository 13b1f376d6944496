"""The package's shape, checked from its source (docs/architecture.md): folders that read as the pipeline,
imports that only point down, small modules and functions, no import cycle."""
import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "qa"
# Each floor imports only from its own floor and those below it.
FLOORS = {"ground": 0, "runtime": 1, "ingest": 1, "index": 2, "answering": 3, "surfaces": 4}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
LONG_ON_PURPOSE = {("surfaces/cli.py", "parser"), ("surfaces/app.py", "build_ui")}  # an argparse and a Gradio layout


@functools.cache
def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py") if "models" not in p.relative_to(PACKAGE).parts}


def floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in FLOORS else "ground"


def imports(module: str, path: Path, top_level_only: bool) -> set[str]:
    """The qa modules this one imports (relative imports resolved), at module level or anywhere."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in nodes:
        if top_level_only and isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports nothing at run time
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names]
            found |= {n for n in names if n in modules()} or {target}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qa"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("qa.")}
    return {m for m in found if m in modules()}


def test_imports_only_point_down_the_floors():
    upward = [(m, target) for m, path in modules().items() if m != "qa" and not m.endswith("__main__")
              for target in imports(m, path, top_level_only=False)
              if target != "qa" and FLOORS[floor(target)] > FLOORS[floor(m)]]
    assert upward == []


def test_no_import_cycle_between_modules():
    graph = {m: imports(m, p, top_level_only=True) - {m} for m, p in modules().items()}
    done, path = set(), []

    def visit(m):
        if m in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for target in sorted(graph[m]):
            visit(target)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_modules_and_functions_stay_small():
    long_modules = {str(p.relative_to(PACKAGE)): n for p in modules().values()
                    if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long_modules == {}
    long_functions = []
    for p in modules().values():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and (str(p.relative_to(PACKAGE)), node.name) not in LONG_ON_PURPOSE:
                    long_functions.append(f"{p.relative_to(PACKAGE)}:{node.name} ({lines} lines)")
    assert long_functions == []


def test_the_folders_read_as_the_pipeline():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == \
        {"ingest", "index", "runtime", "answering", "surfaces"}
    assert (PACKAGE / "index" / "ann" / "base.py").is_file()
    assert "faiss" not in (PACKAGE / "index" / "ann" / "base.py").read_text()  # the dense base knows no backend
