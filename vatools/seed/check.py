"""A seed checked against the debconf templates of the packages it will meet.

Syntax alone (vatools.seed.file.check_syntax) cannot tell a typo in a question name, a select
value that is not a choice, or a password whose confirmation is missing: the templates can.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import AbstractSet as Set, Mapping, Sequence

from vatools.seed import templates
from vatools.target import Target
from vatools.seed.file import (
    VALUE_TYPES,
    Problem,
    Seed,
    Selection,
    load_seed,
    split_choices,
)
from vatools.seed.templates import Template, password_pairs


def check_against_templates(
    seed: Seed, templates: Mapping[str, Template], packages: Set[str], complete: bool = True
) -> list[Problem]:
    """Problems visible once the templates are known: questions, types, choices, password pairs.

    `templates` are those of `packages`: the packages that will be installed and those that are.
    A question that its owner package does not ask on this release is a warning (code
    "not-asked": vainstall skips the line); an unknown question that looks like a typo of one
    it does ask is an error, and so is one whose owner is not among `packages` -- unless the
    templates are not `complete` (only what a system happens to have installed), when such a
    line simply cannot be checked.
    """
    problems: list[Problem] = []
    answers = seed.answers()
    for sel in seed.selections:
        template = templates.get(sel.question)
        if template is None:
            if (complete or sel.owner in packages) and (
                not sel.is_flag or sel.question not in answers
            ):
                problems.append(_unknown_question(sel, templates, packages))
            continue
        if sel.is_flag or sel.type not in VALUE_TYPES:
            continue  # flags have no type to compare; unknown types are a syntax error already
        if sel.type != template.type:
            problems.append(
                Problem(
                    "error",
                    f"{sel.question} is a {template.type} question ({template.owner}),"
                    f" the seed says {sel.type}",
                    sel.location,
                    hint=f"write: {sel.owner} {sel.question} {template.type} VALUE",
                )
            )
        elif template.choices is not None:
            problems.extend(_check_choices(sel, template))
    problems.extend(_check_password_pairs(answers, templates))
    return sorted(problems, key=_line)


def _line(problem: Problem) -> int:
    return problem.location.line if problem.location else 0


def _unknown_question(
    sel: Selection, templates: Mapping[str, Template], packages: Set[str]
) -> Problem:
    asked_by_owner = sorted(t.name for t in templates.values() if t.owner == sel.owner)
    close = difflib.get_close_matches(sel.question, asked_by_owner, n=1, cutoff=0.85)
    if close:
        return Problem(
            "error", f"unknown question {sel.question}: did you mean {close[0]}?", sel.location
        )
    if sel.owner in packages:
        return Problem(
            "warning",
            f"{sel.owner} does not ask {sel.question} on this system; the line is skipped",
            sel.location,
            code="not-asked",
        )
    return Problem(
        "error",
        f"no package being installed asks {sel.question}"
        f" (its owner {sel.owner!r} is not among them)",
        sel.location,
        hint="check the owner and question names; `vatools seed skeleton PKG` lists the questions",
    )


def _check_choices(sel: Selection, template: Template) -> list[Problem]:
    assert template.choices is not None
    values = split_choices(sel.value) if template.type == "multiselect" else [sel.value]
    wrong = [v for v in values if v not in template.choices]
    if not wrong:
        return []
    return [
        Problem(
            "error",
            f"{sel.question}: {', '.join(repr(v) for v in wrong)} is not one of its choices",
            sel.location,
            hint="choices: " + ", ".join(template.choices),
        )
    ]


def _check_password_pairs(
    answers: Mapping[str, Selection], templates: Mapping[str, Template]
) -> list[Problem]:
    # Never print the values: they are passwords.
    problems = []
    for confirm, primary in password_pairs(templates).items():
        first, second = answers.get(primary), answers.get(confirm)
        if first is None and second is None:
            continue
        if first is None or second is None:
            given, missing = (first, confirm) if second is None else (second, primary)
            assert given is not None
            problems.append(
                Problem(
                    "error",
                    f"{given.question} is answered but {missing} is not; the package's config"
                    " script would ask again and again",
                    given.location,
                    hint=f"add: {given.owner} {missing} password (empty: vainstall generates both)",
                )
            )
        elif first.value != second.value:
            problems.append(
                Problem(
                    "error",
                    f"{confirm} differs from {primary}; the package's config script would ask"
                    " again and again",
                    second.location,
                    hint="give both the same value, or leave both empty to have one generated",
                )
            )
    return problems


def check_file(path: Path, target: Target, against: Sequence[str] = ()) -> list[Problem]:
    """Every problem of a seed file, as the seed policy (vatools.seed.policy) finds it.

    With `against` (package names or .deb files) the templates are those of everything apt
    would install for them, so the check is complete and agrees with `vainstall --check`;
    without, only the questions of packages the target already has installed can be checked.
    """
    from vatools.seed import policy  # it builds on this module

    seed = load_seed(path)
    installing = templates.for_packages(target, against) if against else None
    verdict = policy.effective_seed(seed, (), policy.read_in_play(target, installing))
    return list(verdict.problems)


def check_unanswered(
    seed: Seed, templates: Mapping[str, Template], installing: Set[str]
) -> list[Problem]:
    """Questions asked at priority high or critical that the seed leaves unanswered and that
    have no default: the noninteractive frontend gives them an empty answer."""
    answers = seed.answers()
    problems = []
    for t in sorted(templates.values(), key=lambda t: t.name):
        if (
            t.owner in installing
            and t.priority in ("high", "critical")
            and t.name not in answers
            and not t.default
            and t.type not in ("note", "text", "title", "error")
        ):
            problems.append(
                Problem(
                    "warning",
                    f"{t.owner} asks {t.name} ({t.type}) at priority {t.priority} with no default,"
                    " and the seed does not answer it: it will be empty",
                    hint=f"add: {t.owner} {t.name} {t.type} VALUE",
                    code="unanswered",
                )
            )
    return problems
