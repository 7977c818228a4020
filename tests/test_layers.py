"""The import contracts (pyproject.toml `[tool.importlinter]`, CONTRIBUTING.md "Layers"):
devserver > gateway | services > rules > kit, services independent of each other, the
gateway importing no service. `lint-imports` fails the suite with its report when one breaks."""

import shutil
import subprocess
import sys
from pathlib import Path

from kit.settings import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("devserver", "gateway", "services", "rules", "kit")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_hold():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_a_service_importing_another_breaks_the_contracts(tmp_path):
    # The same contracts on a copy of the tree where journey reads segment's storage: proof
    # that they can fail (a misnamed root package would make every contract pass vacuously).
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    engine = tmp_path / "services" / "journey" / "engine.py"
    engine.write_text("from services.segment.repository import SegmentRepository  # noqa: F401\n"
                      + engine.read_text())
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "services.journey.engine -> services.segment.repository" in result.stdout, result.stdout
    assert "Services are independent" in result.stdout.split("Broken contracts")[1], result.stdout
