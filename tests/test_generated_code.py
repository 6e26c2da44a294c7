"""gen/python is exactly what `make proto` produces from proto/: never stale, never edited by hand."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

from tests.support.infra import ROOT


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_generated_package_matches_the_protos(tmp_path: Path) -> None:
    subprocess.run(["scripts/gen-proto.sh", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    fresh = _files(tmp_path / "minorprot")
    committed = _files(ROOT / "gen/python/minorprot")
    assert sorted(fresh) == sorted(committed), "run `make proto` and commit gen/python"
    stale = [name for name, path in fresh.items() if not filecmp.cmp(path, committed[name], shallow=False)]
    assert stale == [], f"stale generated files (run `make proto`): {stale}"
