"""The repository stands alone: its code, tests, README and build never read a folder beside it
(the golden scenarios and the domain are copied in as data and docs)."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ("../shared", "/work/shared", 'parents[2] / "shared"', '.parent / "shared"')


def _tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in listed.splitlines() if line]


def test_no_code_test_readme_or_build_file_reads_a_folder_beside_the_repository():
    readers = []
    for path in _tracked_files():
        if path.suffix not in (".py", ".md", ".toml", ".yaml", ".yml", ".cfg", ".ini", ".j2", ".html") \
                and path.name not in ("Makefile",):
            continue
        if not path.exists():
            continue
        text = path.read_text("utf-8", errors="replace")
        if path == Path(__file__).resolve():
            continue
        readers += [f"{path.relative_to(ROOT)}: {needle}" for needle in OUTSIDE if needle in text]
    assert readers == []


def test_the_golden_audited_and_pathway_scenarios_are_data_of_the_repository():
    scenarios = ROOT / "scenarios"
    assert len(list((scenarios / "golden").glob("golden-*.json"))) == 14
    assert len(list((scenarios / "audited").glob("audit-*.json"))) == 20
    assert len(list((scenarios / "pathways").glob("golden-*.json"))) == 4
    assert (ROOT / "docs" / "domain.md").exists()
