"""The seed policy: what a seed becomes on one system, and every problem with it.

One function, `effective_seed`, decides for every caller -- vainstall's plan, `vainstall
--check`, `vatools seed check` (and later upgrades and the apt hook) -- so that they never
disagree about the same seed.  It is pure: the caller reads the templates in play (`InPlay`:
the .debs apt will install, and what debconf's database already knows) and hands them over.

The rules, in order:

1. `--set QUESTION=VALUE` overrides replace the seed's answer, or add a line for a question
   the templates know; an override of a question nobody asks is an error.
2. The syntax, as debconf parses it; then the templates: unknown questions, types, choices,
   password pairs (vatools.seed.check).
3. Warnings: answers for packages already installed (used only when reconfigured), questions
   asked at priority high or critical that stay unanswered with no default.
4. Lines for questions their package does not ask on this system are dropped (a warning says so).
5. Every answer is written with the package that asks the question as owner.
6. With `only_new`, questions debconf's database already answers keep that answer: the seed's
   lines for them are dropped (overrides stay: they are the administrator's word now).

>>> from vatools.seed.file import parse_seed
>>> from vatools.seed.templates import parse_templates
>>> wiki = parse_templates("Template: wiki/title\\nType: string\\nDescription: Title\\n", "wiki")
>>> play = InPlay(installing=wiki, installing_packages=frozenset({"wiki"}))
>>> seed = parse_seed("other wiki/title string Old\\n", "w.seed")
>>> verdict = effective_seed(seed, [("wiki/title", "New")], play)
>>> verdict.seed.render()
'wiki wiki/title string New\\n'
>>> [str(p) for p in verdict.problems]
['--set:1: warning: wiki/title belongs to wiki, not other: it is seeded with owner wiki']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from vatools.seed.check import check_against_templates, check_unanswered
from vatools.seed.file import Location, Problem, Seed, Selection, check_syntax, value_hazard
from vatools.seed.templates import Template
from vatools.target import Target

OVERRIDE_FILE = "--set"  # the Location.file of an answer given with --set


@dataclass(frozen=True)
class InPlay:
    """The debconf templates a seed meets on one system.

    `installing`: the templates inside the .debs apt will install, and `installing_packages`
    every package apt will install (templates or not).  `installed`: the templates debconf's
    database holds, each with its owner package, and `installed_packages` those owners.
    `answers`: the answers that database holds, by question.  `complete` is False when what
    apt would install is not known (`seed check` without --against): a line for a package
    outside what is known cannot be checked then, and no warning about installing is given.
    """

    installing: Mapping[str, Template] = field(default_factory=dict)
    installing_packages: frozenset[str] = frozenset()
    installed: Mapping[str, Template] = field(default_factory=dict)
    installed_packages: frozenset[str] = frozenset()
    answers: Mapping[str, str] = field(default_factory=dict)
    complete: bool = True

    @property
    def templates(self) -> dict[str, Template]:
        """Every template known; a .deb's own wins over the database's older copy."""
        return {**self.installed, **self.installing}

    @property
    def packages(self) -> frozenset[str]:
        return self.installing_packages | self.installed_packages


@dataclass(frozen=True)
class Verdict:
    """The effective seed (what reaches debconf) and every problem found on the way."""

    seed: Seed
    problems: tuple[Problem, ...]
    kept: tuple[str, ...] = ()  # only_new: questions whose database answer stays

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.is_error)

    @property
    def generate(self) -> tuple[str, ...]:
        """Password questions left empty: vainstall generates their values."""
        return tuple(
            s.question
            for s in self.seed.selections
            if s.type == "password" and not s.is_flag and s.value == ""
        )


def effective_seed(
    seed: Seed,
    overrides: Iterable[tuple[str, str]],
    in_play: InPlay,
    *,
    only_new: bool = False,
) -> Verdict:
    """Apply the policy (see the module's doc) to `seed`; never raises for a seed's faults."""
    known = in_play.templates
    seed, problems = _apply_overrides(seed, overrides, known)
    problems += check_syntax(seed)
    problems += check_against_templates(seed, known, in_play.packages, in_play.complete)
    if in_play.complete:
        problems += _answers_for_installed_packages(seed, known, in_play.installing_packages)
    unanswered_known = (
        {n: t for n, t in known.items() if n not in in_play.answers} if only_new else known
    )
    problems += check_unanswered(seed, unanswered_known, in_play.installing_packages)
    not_asked = {p.location for p in problems if p.code == "not-asked"}
    seed = replace(seed, selections=tuple(s for s in seed.selections if s.location not in not_asked))
    seed, owner_fixes = _owned_by_their_packages(seed, known)
    problems += owner_fixes
    kept: tuple[str, ...] = ()
    if only_new:
        seed, kept = _keep_database_answers(seed, in_play.answers)
    return Verdict(seed, tuple(sorted(problems, key=_order)), kept)


def read_in_play(
    target: Target, installing: tuple[Iterable[str], Mapping[str, Template]] | None
) -> InPlay:
    """The templates in play on `target`: `installing` (packages and templates of the .debs
    apt will install, None when unknown) and what the target's debconf database knows."""
    from vatools.seed import debconfdb, templates

    installed_packages, installed = templates.from_debconf_db(target)
    packages, found = installing if installing is not None else ((), {})
    return InPlay(
        installing=dict(found),
        installing_packages=frozenset(packages),
        installed=installed,
        installed_packages=frozenset(installed_packages),
        answers=debconfdb.values(target),
        complete=installing is not None,
    )


def _order(problem: Problem) -> tuple[int, int]:
    """The seed's lines in order, then the --set overrides, then problems of no line."""
    where = problem.location
    if where is None:
        return (2, 0)
    return (1 if where.file == OVERRIDE_FILE else 0, where.line)


def _apply_overrides(
    seed: Seed, overrides: Iterable[tuple[str, str]], known: Mapping[str, Template]
) -> tuple[Seed, list[Problem]]:
    problems = []
    for index, (question, value) in enumerate(overrides, start=1):
        where = Location(OVERRIDE_FILE, index)
        if "\n" in value or value.endswith("\\"):
            problems.append(
                Problem(
                    "error",
                    f"--set {question}: a value cannot span lines or end in a backslash",
                    where,
                )
            )
        elif value_hazard(value):  # debconf would hand back something else
            problems.append(Problem("error", f"--set {question}: {value_hazard(value)}", where,
                                    hint="change the value"))
        elif seed.answer(question) is not None:
            seed = seed.with_value(question, value, where)
        elif question in known:
            template = known[question]
            seed = seed.with_selection(Selection(template.owner, question, template.type, value, where))
        else:
            problems.append(
                Problem(
                    "error",
                    f"--set {question}: no package being installed asks that question",
                    where,
                    hint="check the name; `vatools seed skeleton PKG` lists a package's questions",
                )
            )
    return seed, problems


def _answers_for_installed_packages(
    seed: Seed, known: Mapping[str, Template], installing: frozenset[str]
) -> list[Problem]:
    """Answers for packages already installed reach them only if they are reconfigured."""
    problems = []
    for sel in seed.answers().values():
        template = known.get(sel.question)
        if template is not None and template.owner not in installing:
            problems.append(
                Problem(
                    "warning",
                    f"{template.owner} is already installed: the answer to {sel.question} is"
                    " stored, but used only when it is reconfigured"
                    f" (dpkg-reconfigure {template.owner})",
                    sel.location,
                    code="already-installed",
                )
            )
    return problems


def _owned_by_their_packages(seed: Seed, known: Mapping[str, Template]) -> tuple[Seed, list[Problem]]:
    """Write every answer with the package that asks it as owner: debconf then forgets the
    answer when that package is purged, where a foreign owner would outlive it."""
    fixed, problems = [], []
    for sel in seed.selections:
        template = known.get(sel.question)
        if template is not None and template.owner and sel.owner != template.owner:
            problems.append(
                Problem(
                    "warning",
                    f"{sel.question} belongs to {template.owner}, not {sel.owner}:"
                    f" it is seeded with owner {template.owner}",
                    sel.location,
                    code="owner",
                )
            )
            sel = replace(sel, owner=template.owner)
        fixed.append(sel)
    return replace(seed, selections=tuple(fixed)), problems


def _keep_database_answers(seed: Seed, answers: Mapping[str, str]) -> tuple[Seed, tuple[str, ...]]:
    """Drop the seed's lines (values and flags) for questions the database already answers;
    an override is the administrator's word now and stays."""
    overridden = {
        s.question for s in seed.selections if s.location.file == OVERRIDE_FILE and not s.is_flag
    }
    kept = tuple(
        sorted({s.question for s in seed.selections if s.question in answers} - overridden)
    )
    return seed.without(kept), kept

