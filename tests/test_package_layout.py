"""tests/ mirrors lift/ one to one: every module has its test file, every test file has its module.

`lift/a/b.py` is tested in `tests/a/test_b.py` or `tests/a/test_b_<aspect>.py`. A test file maps to a
module in the same relative folder, or is `test_main*.py` beside a package with a `__main__.py`, or
`test_package*.py` (package-wide checks), or lives in tests/studies/ and tests a `studies/*.py` script.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIFT, TESTS, STUDIES = ROOT / "lift", ROOT / "tests", ROOT / "studies"

def _modules() -> set[str]:
    """lift modules as 'a/b' paths relative to lift/, without the .py suffix."""
    return {p.relative_to(LIFT).with_suffix("").as_posix() for p in LIFT.rglob("*.py")}


def _test_files() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def _candidates(folder: tuple[str, ...], stem: str) -> list[str]:
    """Modules a test stem may name: test_a_b_c -> a, a_b, a_b_c (aspect suffixes allowed)."""
    bits = stem[len("test_"):].split("_")
    return ["/".join(folder + ("_".join(bits[:i]),)) for i in range(1, len(bits) + 1)]


def _maps_to_something(test: Path, modules: set[str], scripts: set[str]) -> bool:
    parts = test.relative_to(TESTS).with_suffix("").parts
    folder, stem = parts[:-1], parts[-1]
    if folder == ("studies",):
        return any(c.split("/")[-1] in scripts for c in _candidates((), stem))
    if stem.startswith("test_package"):
        return True
    if stem.startswith("test_main") and "/".join(folder + ("__main__",)) in modules:
        return True
    return any(c in modules for c in _candidates(folder, stem))


def _has_test(module: str) -> bool:
    folder, _, name = module.rpartition("/")
    base = TESTS / folder if folder else TESTS
    return any(base.glob(f"test_{name}.py")) or any(base.glob(f"test_{name}_*.py"))


def test_every_lift_module_has_a_mirrored_test_file() -> None:
    untested = sorted(m for m in _modules()
                      if m.rpartition("/")[2] not in ("__init__", "__main__") and not _has_test(m))
    assert not untested, f"lift modules without tests/<same folder>/test_<module>*.py: {untested}"


def test_every_test_file_maps_to_a_lift_module_or_a_study_script() -> None:
    modules = _modules()
    scripts = {p.stem for p in STUDIES.glob("*.py")}
    unmapped = [t.relative_to(ROOT).as_posix() for t in _test_files() if not _maps_to_something(t, modules, scripts)]
    assert not unmapped, f"test files that mirror no lift module (nor a studies/ script): {unmapped}"


def test_the_mapping_rules_can_fail() -> None:
    """The two checks above are not vacuous: a stray name and a missing test are caught."""
    modules = {"report/plan", "data/__main__", "video_io"}
    assert _maps_to_something(TESTS / "report" / "test_plan_selectors.py", modules, set())
    assert _maps_to_something(TESTS / "data" / "test_main.py", modules, set())
    assert not _maps_to_something(TESTS / "report" / "test_main.py", modules, set())
    assert not _maps_to_something(TESTS / "test_plan.py", modules, set())
    assert _maps_to_something(TESTS / "studies" / "test_context_ablation.py", set(), {"context_ablation"})
    assert not _maps_to_something(TESTS / "studies" / "test_nothing.py", set(), {"context_ablation"})
    assert not _has_test("no_such_module")
