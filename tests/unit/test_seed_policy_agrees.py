"""One seed, three judges: vainstall's plan, `vainstall --check` and `vatools seed check
--against` must report the same problems, since all three ask the seed policy.

The system is small but real: .debs built with dpkg-deb from the probe-questions templates and
config script (tests/data), and a debconf database in which libc6 (with its real templates)
is installed.  No apt: the plan starts where apt has downloaded the packages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.small_system import LIBC6_TEMPLATES, PROBE_QUESTIONS, build_deb, write_debconf_db
from vatools import aptq, install
from vatools.seed.check import check_file
from vatools.seed.file import Problem, load_seed
from vatools.target import Target

SEEDS = {
    "errors": (
        "# every kind of problem, one per line\n"
        "someone-else probe-questions/name string probe-one\n"
        "probe-questions probe-questions/enabled boolean yes\n"
        "probe-questions probe-questions/color select purple\n"
        "probe-questions probe-questions/password password s3cret\n"
        "probe-questions probe-questions/legacy-mode boolean true\n"
        "libc6 libraries/restart-without-asking boolean true\n"
    ),
    "warnings only": (
        "probe-questions probe-questions/name string probe-one\n"
        "probe-questions probe-questions/color select green\n"
        "probe-questions probe-questions/password password\n"
        "probe-questions probe-questions/confirm password\n"
        "libc6 libraries/restart-without-asking boolean true\n"
    ),
}

EXPECTED = {
    "errors": [
        "{seed}:2: warning: probe-questions/name belongs to probe-questions, not someone-else:"
        " it is seeded with owner probe-questions",
        "{seed}:3: error: probe-questions/enabled: boolean value must be true or false, not 'yes'",
        "{seed}:4: error: probe-questions/color: 'purple' is not one of its choices",
        "{seed}:5: error: probe-questions/password is answered but probe-questions/confirm is"
        " not; the package's config script would ask again and again",
        "{seed}:6: warning: probe-questions does not ask probe-questions/legacy-mode on this"
        " system; the line is skipped",
        "{seed}:7: warning: libc6 is already installed: the answer to"
        " libraries/restart-without-asking is stored, but used only when it is reconfigured"
        " (dpkg-reconfigure libc6)",
        "warning: probe-questions asks probe-questions/confirm (password) at priority high"
        " with no default, and the seed does not answer it: it will be empty",
        "warning: probe-questions asks probe-questions/features (multiselect) at priority high"
        " with no default, and the seed does not answer it: it will be empty",
    ],
    "warnings only": [
        "{seed}:5: warning: libc6 is already installed: the answer to"
        " libraries/restart-without-asking is stored, but used only when it is reconfigured"
        " (dpkg-reconfigure libc6)",
        "warning: probe-questions asks probe-questions/features (multiselect) at priority high"
        " with no default, and the seed does not answer it: it will be empty",
    ],
}


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("debs")
    return {
        "probe-appliance": build_deb(directory, "probe-appliance", depends="probe-questions"),
        "probe-questions": build_deb(
            directory,
            "probe-questions",
            templates=PROBE_QUESTIONS / "probe-questions.templates",
            config=PROBE_QUESTIONS / "probe-questions.config",
        ),
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A system with libc6 installed (and one of its questions answered)."""
    write_debconf_db(
        tmp_path / "root", "libc6", LIBC6_TEMPLATES, {"libraries/restart-without-asking": "false"}
    )
    return tmp_path / "root"


def plan_problems(seed_file: Path, root: Path, debs: dict[str, Path]) -> list[Problem]:
    """What vainstall's plan, and so `vainstall --check`, finds: the errors it refuses with,
    or the warnings it shows (vatools/cli/vainstall.py prints exactly these)."""
    request = install.Request("probe-appliance", seed_file=seed_file, target=Target(root))
    appliance = aptq.Candidate("probe-appliance", "1.0", "test", "", None, True)
    changes = aptq.Changes((("probe-appliance", "1.0"), ("probe-questions", "1.0")), ())
    choice = install.SeedChoice(load_seed(seed_file), "file", str(seed_file), "")
    try:
        plan = install.plan_from_downloads(request, appliance, choice, None, changes, debs)
    except install.SeedRejected as rejected:
        return rejected.problems
    return list(plan.warnings)


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_plan_check_and_seed_check_report_the_same_problems(
    case: str, tmp_path: Path, root: Path, debs: dict[str, Path]
) -> None:
    seed_file = tmp_path / "appliance.seed"
    seed_file.write_text(SEEDS[case])

    by_plan = plan_problems(seed_file, root, debs)
    by_seed_check = check_file(seed_file, Target(root), [str(deb) for deb in debs.values()])

    assert by_plan == by_seed_check
    assert [str(p) for p in by_plan] == [line.format(seed=seed_file) for line in EXPECTED[case]]
    assert "s3cret" not in "".join(str(p) + str(p.hint) for p in by_plan)
