"""The import graph of lift/: no cycle, evaluation never loads the trainer, every module imports on
its own, an import inside a function says why, and no file or function grows past a readable size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lift

ROOT = Path(lift.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _module_level_imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """lift modules that importing `name` imports (statements outside functions, classes and the
    `if __name__ == "__main__"` block), with the packages above them that are not its own."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    stack = list(ast.parse(path.read_text()).body)
    while stack:
        node = stack.pop()
        if _is_main_guard(node) or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules)
        else:
            stack.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    out = set()
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            module = ".".join(parts[:i])
            if module in modules and module not in own and module != "lift":
                out.add(module)
    return out


def test_no_import_cycle_in_lift() -> None:
    modules = _modules()
    graph = {name: _module_level_imports(path, name, modules) for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "lift.checkpoint" in graph["lift.train.__main__"] and "lift.evaluate" in graph["lift.train"]


def test_evaluation_and_inference_do_not_load_the_trainer() -> None:
    code = ("import sys, lift.evaluate, lift.interpolate, lift.checkpoint; "
            "print(sorted(m for m in sys.modules if m in ('lift.train', 'lift.train.__main__')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT.parent).stdout.strip()
    assert out == "[]"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_reader_sees_a_cycle(tmp_path: Path) -> None:
    """The reader on a tiny package with a cycle through a relative import and a package __init__."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    import json\n\nfrom pkg import a\n")
    modules = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.sub": pkg / "sub" / "__init__.py",
               "pkg.sub.b": pkg / "sub" / "b.py"}
    graph = {name: _module_level_imports(path, name, modules) for name, path in modules.items()}
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.a"}
    assert _find_cycle(graph) == ["pkg.a", "pkg.sub", "pkg.sub.b", "pkg.a"]
    assert _bare_function_imports(pkg / "sub" / "b.py") == [2]


def _bare_function_imports(path: Path) -> list[int]:
    """Lines of imports inside functions with no comment on that line or the line before it."""
    lines = path.read_text().splitlines()
    bare = []
    for func in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    here, before = lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ""
                    if "#" not in here and not before.strip().startswith("#"):
                        bare.append(node.lineno)
    return bare


def test_imports_inside_functions_state_their_reason() -> None:
    bare = {str(p.relative_to(ROOT.parent)): lines for p in _modules().values()
            if (lines := _bare_function_imports(p))}
    assert not bare, f"imports inside functions without a comment saying why: {bare}"


def test_every_module_imports_on_its_own() -> None:
    """Each module with no other lift module loaded before it (one interpreter; lift.* is dropped
    from sys.modules between imports, third-party packages stay loaded, which keeps it fast)."""
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {sorted(_modules())!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'lift' or m.startswith('lift.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as err:\n"
        "        failed.append(f'{name}: {type(err).__name__}: {err}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT.parent, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


def test_module_and_function_sizes() -> None:
    """No file in lift/ over 600 lines; no function over 60 lines unless its docstring says why
    (a sentence starting 'Long because')."""
    too_long = []
    for path in sorted(_modules().values()):
        text = path.read_text()
        if len(text.splitlines()) > 600:
            too_long.append(f"{path.relative_to(ROOT.parent)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60 and "Long because" not in (ast.get_docstring(node) or ""):
                    too_long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long
