"""vainstall's plan from given inputs (vatools.install): no apt, no system touched.

apt's part (candidate, resolver, downloads) is given as data; templates are parsed from the
real probe-questions templates file (tests/data).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.small_system import FULL_SEED, PROBE_QUESTIONS
from vatools import aptq, install
from vatools.errors import ExitCode, VatoolsError
from vatools.seed.file import parse_seed
from vatools.seed.policy import InPlay
from vatools.seed.templates import parse_templates

PROBE = parse_templates((PROBE_QUESTIONS / "probe-questions.templates").read_text(), "probe-questions")
IN_PLAY = InPlay(installing=PROBE, installing_packages=frozenset({"probe-appliance", "probe-questions"}))
APPLIANCE = aptq.Candidate("probe-appliance", "1.0", "test appliance", "", None, True)
CHANGES = aptq.Changes((("probe-appliance", "1.0"), ("probe-questions", "1.0")), ())
SEED = FULL_SEED


def plan(text: str = SEED, *overrides: tuple[str, str]) -> install.Plan:
    request = install.Request("probe-appliance", overrides=overrides)
    choice = install.SeedChoice(parse_seed(text, "shipped.seed"), "package", "shipped.seed", "abc")
    return install.build_plan(request, APPLIANCE, choice, None, CHANGES, IN_PLAY)


def test_the_plan_carries_the_effective_seed_and_the_passwords_to_generate():
    made = plan(SEED, ("probe-questions/name", "Team"))
    assert made.seed.source == "package" and made.seed.sha256 == "abc"
    assert made.seed.seed.answer("probe-questions/name").value == "Team"  # type: ignore[union-attr]
    assert made.generate == ("probe-questions/password", "probe-questions/confirm")
    assert made.warnings == () and made.replaces is None and made.changes == CHANGES


def test_the_plan_shows_warnings_and_drops_lines_not_asked():
    made = plan(SEED + "probe-questions probe-questions/legacy-mode boolean true\n")
    assert [p.code for p in made.warnings] == ["not-asked"]
    assert made.seed.seed.answer("probe-questions/legacy-mode") is None


def test_a_seed_with_errors_is_rejected_with_every_problem_and_no_password_shown():
    broken = SEED.replace("/password password\n", "/password password s3cret\n") + "x x/y string z\n"
    with pytest.raises(install.SeedRejected) as caught:
        plan(broken, ("probe-questions/color", "purple"))
    rejected = caught.value
    assert rejected.exit_code == ExitCode.REFUSED
    assert [(p.severity, str(p.location)) for p in rejected.problems] == [
        ("error", "shipped.seed:6"),  # the confirmation differs
        ("error", "shipped.seed:7"),
        ("error", "--set:1"),
    ]
    assert "shipped.seed has 3 error(s)" in rejected.message
    assert "s3cret" not in rejected.message


@pytest.mark.parametrize(
    ("installed", "replace_it", "expected"),
    [([], False, None), (["other-appliance"], True, "other-appliance")],
)
def test_the_appliance_to_replace(installed: list[str], replace_it: bool, expected: str | None):
    request = install.Request("probe-appliance", replace=replace_it)
    assert install.appliance_to_replace(installed, request) == expected


def test_one_appliance_per_system_and_none_twice():
    with pytest.raises(VatoolsError) as caught:
        install.appliance_to_replace(["other-appliance"], install.Request("probe-appliance"))
    assert caught.value.message == "other-appliance is installed, and a system runs one appliance at a time"
    assert "vainstall --replace probe-appliance" in str(caught.value.hint)
    with pytest.raises(VatoolsError, match="probe-appliance is already installed"):
        install.appliance_to_replace(["probe-appliance"], install.Request("probe-appliance", replace=True))


def test_only_the_replaced_appliance_may_be_removed():
    request = install.Request("probe-appliance", replace=True)
    removing = replace(CHANGES, remove=("other-appliance",))
    install.refuse_removals(request, removing, "other-appliance")  # no error
    with pytest.raises(VatoolsError) as caught:
        install.refuse_removals(request, replace(CHANGES, remove=("b", "a", "other-appliance")), "other-appliance")
    assert caught.value.message == "installing probe-appliance would remove a, b"
