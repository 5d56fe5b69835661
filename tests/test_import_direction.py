"""The four packages import each other only downwards (see docs/ARCHITECTURE.md §2); the
benchmarks (``bench``) sit on top: they may import everything, and nothing imports them (the
tests, which are not a package here, may)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "spela_hw": set(),
    "sim": {"spela_hw"},
    "mappings": {"spela_hw"},
    "reports": {"spela_hw", "sim", "mappings"},
    "bench": {"spela_hw", "sim", "mappings", "reports"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_downwards(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    for path in files:
        bad = imported_packages(path) - ALLOWED[package] - {package}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_every_package_of_the_repository_is_checked():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(ALLOWED), f"packages without an import rule: {sorted(packages - set(ALLOWED))}"


def test_checker_sees_a_forbidden_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import reports.cli\nfrom sim import x\n")
    assert imported_packages(f) == {"reports", "sim"}
