"""Golden tests of the generator: input.json + real templates -> the expected tree, byte for byte.

See tests/data/generate/README.md; VATOOLS_UPDATE_GOLDEN=1 rewrites the expected trees.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from vatools.packaging.generate import make_spec, render, write_appliance
from vatools.seed.skeleton import render_skeleton
from vatools.seed.templates import Template, parse_templates

CASES_DIR = Path(__file__).resolve().parents[1] / "data" / "generate"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "input.json").is_file())


def case_templates(case: Path) -> dict[str, Template]:
    found: dict[str, Template] = {}
    for path in sorted((case / "templates").glob("*.templates")):
        found.update(parse_templates(path.read_text(encoding="utf-8"), path.stem))
    return found


def generate_case(case: Path, top: Path) -> None:
    spec_input = json.loads((case / "input.json").read_text())
    spec = make_spec(
        spec_input["name"],
        spec_input["depends"],
        description=spec_input.get("description"),
        maintainer=spec_input["maintainer"],
        web=spec_input.get("web"),
        services=spec_input.get("services"),
        version=spec_input.get("version", "1.0"),
        date=datetime.fromisoformat(spec_input["date"]),
        environ={},
    )
    skeleton = render_skeleton(list(spec.packages), case_templates(case), spec_input["closure"],
                               spec_input["where"])
    write_appliance(render(spec, skeleton), top, spec.name, force=False)


def snapshot(top: Path) -> dict[str, tuple[str, str]]:
    """path -> (kind and mode, content or link target) of every entry below top."""
    found = {}
    for path in sorted(top.rglob("*")):
        relative = str(path.relative_to(top))
        if path.is_symlink():
            found[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            found[relative] = ("dir", "")
        else:
            found[relative] = (oct(path.stat().st_mode & 0o777), path.read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize("case", CASES)
def test_generated_tree_matches_the_golden_tree(case: str, tmp_path: Path) -> None:
    generate_case(CASES_DIR / case, tmp_path)
    expected = CASES_DIR / case / "expected"
    if os.environ.get("VATOOLS_UPDATE_GOLDEN") == "1":
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(tmp_path, expected, symlinks=True)
    got, want = snapshot(tmp_path), snapshot(expected)
    assert sorted(got) == sorted(want)
    for path in want:
        assert got[path] == want[path], f"{case}: {path} differs from the golden file"


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 2
