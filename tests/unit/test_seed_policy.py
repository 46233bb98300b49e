"""The seed policy (vatools.seed.policy), with templates parsed from real templates files."""

from __future__ import annotations

from dataclasses import replace

from tests.support.small_system import FULL_SEED, LIBC6_TEMPLATES, PROBE_QUESTIONS
from vatools.seed.file import parse_seed
from vatools.seed.policy import InPlay, effective_seed
from vatools.seed.templates import config_priorities, parse_templates

PRIORITIES = config_priorities((PROBE_QUESTIONS / "probe-questions.config").read_text())
PROBE = {
    name: replace(t, priority=PRIORITIES.get(name, ""))
    for name, t in parse_templates(
        (PROBE_QUESTIONS / "probe-questions.templates").read_text(), "probe-questions"
    ).items()
}
LIBC6 = parse_templates(LIBC6_TEMPLATES.read_text(), "libc6")

# Installing probe-questions on a system where libc6 is installed.
FRESH = InPlay(
    installing=PROBE,
    installing_packages=frozenset({"probe-appliance", "probe-questions"}),
    installed=LIBC6,
    installed_packages=frozenset({"libc6"}),
    answers={"libraries/restart-without-asking": "false"},
)


def verdict_of(text: str, overrides=(), in_play: InPlay = FRESH, only_new: bool = False):  # type: ignore[no-untyped-def]
    return effective_seed(parse_seed(text, "a.seed"), overrides, in_play, only_new=only_new)


def test_a_complete_seed_passes_unchanged_and_its_empty_passwords_are_to_generate():
    verdict = verdict_of(FULL_SEED)
    assert verdict.problems == ()
    assert verdict.seed == parse_seed(FULL_SEED, "a.seed")
    assert verdict.generate == ("probe-questions/password", "probe-questions/confirm")


def test_overrides_replace_an_answer_or_add_a_line_from_the_templates():
    seed = FULL_SEED.replace("probe-questions probe-questions/enabled boolean true\n", "")
    verdict = verdict_of(seed, [("probe-questions/color", "blue"), ("probe-questions/enabled", "false")])
    assert verdict.problems == ()
    answers = verdict.seed.answers()
    assert (answers["probe-questions/color"].value, str(answers["probe-questions/color"].location)) == (
        "blue",
        "--set:1",
    )
    added = answers["probe-questions/enabled"]
    assert (added.owner, added.type, added.value, str(added.location)) == (
        "probe-questions",
        "boolean",
        "false",
        "--set:2",
    )


def test_bad_overrides_are_problems_with_their_place_on_the_command_line():
    verdict = verdict_of(
        FULL_SEED,
        [("nobody/asks", "x"), ("probe-questions/name", "two\nlines"), ("probe-questions/color", "purple")],
    )
    assert [str(p) for p in verdict.problems] == [
        "--set:1: error: --set nobody/asks: no package being installed asks that question",
        "--set:2: error: --set probe-questions/name: a value cannot span lines or end in a backslash",
        "--set:3: error: probe-questions/color: 'purple' is not one of its choices",
    ]
    assert verdict.seed.answer("probe-questions/name").value == "probe-one"  # type: ignore[union-attr]


def test_lines_not_asked_here_are_dropped_and_owners_are_the_asking_packages():
    verdict = verdict_of(
        FULL_SEED.replace("probe-questions probe-questions/name", "someone probe-questions/name")
        + "probe-questions probe-questions/legacy-mode boolean true\n"
    )
    assert [p.code for p in verdict.problems] == ["owner", "not-asked"]
    assert verdict.seed.answer("probe-questions/legacy-mode") is None
    assert {s.owner for s in verdict.seed.selections} == {"probe-questions"}


def test_answers_for_installed_packages_and_unanswered_questions_are_warnings():
    verdict = verdict_of(
        FULL_SEED.replace("probe-questions probe-questions/features multiselect alpha, gamma\n", "")
        + "libc6 libraries/restart-without-asking boolean true\n"
    )
    assert verdict.errors == ()
    assert [(p.code, str(p.location)) for p in verdict.warnings] == [
        ("already-installed", "a.seed:6"),
        ("unanswered", "None"),
    ]
    # Both stay in the seed: debconf stores the answer, the question gets an empty one.
    assert verdict.seed.answer("libraries/restart-without-asking") is not None


def test_without_knowing_what_apt_installs_only_installed_questions_are_checked():
    only_installed = InPlay(installed=LIBC6, installed_packages=frozenset({"libc6"}), complete=False)
    verdict = verdict_of(
        "libc6 libraries/restart-without-asking boolean yes\nprobe-questions probe-questions/x string y\n",
        in_play=only_installed,
    )
    assert [str(p) for p in verdict.problems] == [
        "a.seed:1: error: libraries/restart-without-asking: boolean value must be true or false,"
        " not 'yes'"
    ]


def test_only_new_keeps_the_answers_the_database_holds():
    upgrade = replace(
        FRESH,
        installed={**LIBC6, **PROBE},
        installed_packages=frozenset({"libc6", "probe-questions"}),
        # The administrator answered these when probe-questions was first installed.
        answers={"probe-questions/name": "admins-name", "probe-questions/color": "red",
                 "probe-questions/password": "", "probe-questions/confirm": ""},
    )
    seed = FULL_SEED + "probe-questions probe-questions/name seen true\n"
    verdict = verdict_of(seed, [("probe-questions/color", "blue")], upgrade, only_new=True)
    assert verdict.kept == ("probe-questions/confirm", "probe-questions/name", "probe-questions/password")
    # New questions come from the seed, an override is the administrator's word now.
    assert verdict.seed.render() == (
        "probe-questions probe-questions/enabled boolean true\n"
        "probe-questions probe-questions/color select blue\n"
        "probe-questions probe-questions/features multiselect alpha, gamma\n"
    )
    assert verdict.generate == ()  # the passwords set earlier stay
    assert verdict.problems == ()


def test_only_new_does_not_count_questions_the_database_answers_as_unanswered():
    seed = FULL_SEED.replace("probe-questions probe-questions/features multiselect alpha, gamma\n", "")
    with_answer = replace(FRESH, answers={"probe-questions/features": "beta"})
    assert [p.code for p in verdict_of(seed, in_play=with_answer).problems] == ["unanswered"]
    assert verdict_of(seed, in_play=with_answer, only_new=True).problems == ()
    assert verdict_of(seed, in_play=with_answer, only_new=True).kept == ()


def test_problems_come_in_seed_order_then_overrides_then_the_rest():
    verdict = verdict_of(
        "probe-questions probe-questions/color select purple\n"
        "probe-questions probe-questions/enabled boolean maybe\n",
        [("nobody/asks", "x")],
    )
    assert [str(p.location) for p in verdict.problems] == ["a.seed:1", "a.seed:2", "--set:1", "None", "None", "None"]


def test_a_set_value_debconf_would_hand_back_changed_is_an_error() -> None:
    """A backslash followed by n reads back from debconf's database as a line break."""
    from vatools.seed.file import parse_seed
    from vatools.seed.policy import InPlay, effective_seed

    seed = parse_seed("probe probe/name string x\n", "s.seed")
    in_play = InPlay(installing={}, installing_packages=frozenset({"probe"}), installed={},
                     installed_packages=frozenset(), answers={}, complete=False)
    verdict = effective_seed(seed, [("probe/name", "C:\\new")], in_play)
    assert [p.message for p in verdict.errors] == [
        "--set probe/name: a backslash followed by n in a value is read back by debconf as a line break"]
