"""The test tree's layout: helpers live in tests/support/, fixtures in conftest.py files, and
no test module imports another (a test module's helpers are not an API, and importing one
runs its module-level fixtures and collection side effects in the importer)."""

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# A test module's name, also when a child process is told to import it (code in a string).
TEST_MODULE_IN_TEXT = re.compile(r"(?:from|import)\s+(tests(?:\.\w+)*\.test_\w+)")


def imported_modules(path: Path) -> set[str]:
    """Modules `path` imports: import statements, and import lines in string literals (code a
    test hands to a child process)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(TEST_MODULE_IN_TEXT.findall(node.value))
    return found


def offending_imports(root: Path) -> dict[str, list[str]]:
    """{file: the test modules it imports} for every Python file under `root`."""
    offences: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        test_modules = sorted(m for m in imported_modules(path) if m.rsplit(".", 1)[-1].startswith("test_"))
        if test_modules:
            offences[str(path.relative_to(root.parent))] = test_modules
    return offences


def test_no_test_module_imports_another():
    assert offending_imports(TESTS) == {}, "move shared helpers to tests/support/, fixtures to a conftest.py"


def test_the_check_sees_an_import_of_a_test_module_in_code_and_in_a_child_process_script(tmp_path):
    tests = tmp_path / "tests"
    test_ = "test_"  # split so that this file's own text names no test module
    (tests / "dispatch").mkdir(parents=True)
    (tests / "dispatch" / "test_a.py").write_text(f"from tests.dispatch.{test_}b import person\n")
    (tests / "dispatch" / "test_c.py").write_text(f'WORKER = """\nfrom tests.dispatch.{test_}c import run_job\n"""\n')
    (tests / "dispatch" / "test_d.py").write_text(f"import tests.segment.{test_}e as e\nfrom tests.support import api\n")
    (tests / "support").mkdir()
    (tests / "support" / "api.py").write_text("from tests.support.waiting import eventually\n")
    assert offending_imports(tests) == {
        "tests/dispatch/test_a.py": ["tests.dispatch.test_b"],
        "tests/dispatch/test_c.py": ["tests.dispatch.test_c"],
        "tests/dispatch/test_d.py": ["tests.segment.test_e"],
    }
