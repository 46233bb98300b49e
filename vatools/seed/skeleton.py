"""Seed skeletons: every debconf question a set of packages will ask, as commented-out seed lines.

The questions come from the truth: apt resolves the packages with everything it would install
with them on the target, the .debs are downloaded to a temporary directory (nothing on the
system changes) and their templates are read (vatools.seed.templates.for_packages).  Each question
becomes a block of comments -- description, type, default, choices -- and a seed line with the
default as its value, commented out; the packager uncomments the lines they mean to answer.

>>> from vatools.seed.templates import Template
>>> t = {"x/name": Template("x/name", "string", "x", "", None, "Your name:")}
>>> print(render_skeleton(["x"], t, {"x"}, "Debian bookworm").split("\\n\\n", 1)[1], end="")
# ==== x ====
<BLANKLINE>
# Your name:
# string; !! no default
#x x/name string
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Collection, Mapping, Sequence

from vatools.packaging import policy
from vatools.seed import templates
from vatools.data import render_data
from vatools.run import Target
from vatools.seed.templates import Template, password_pairs

# Template types that are messages, not questions: nothing to seed.
MESSAGE_TYPES = ("note", "text", "title", "error")

# Types where an empty answer is rarely what the package wants.
NEEDS_DEFAULT = ("string", "select")

WIDTH = 96  # of comment lines


def seed_skeleton(target: Target, packages: Sequence[str]) -> str:
    """The skeleton of every question that installing `packages` (names or .deb files) on the
    target asks, including those of everything apt would install with them."""
    for spec in packages:
        if not spec.endswith(".deb"):
            policy.check_package_name(spec)
    closure, found = templates.for_packages(target, packages)
    # Named packages already installed on the target are not downloaded: take their
    # questions from the target's debconf database instead.
    names = {p for p in packages if not p.endswith(".deb")}
    _, installed = templates.from_debconf_db(target)
    for name, template in installed.items():
        if template.owner in names - closure and name not in found:
            found[name] = template
    requested = [Path(p).name.split("_")[0] if p.endswith(".deb") else p for p in packages]
    return render_skeleton(requested, found, closure | names, describe_target(target))


def describe_target(target: Target) -> str:
    """'Debian bookworm (this system)' -- the release decides which questions exist."""
    release = "an unknown release"
    os_release = target.path("/etc/os-release")
    if os_release.is_file():
        fields = dict(
            line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line
        )
        name = fields.get("ID", "").strip('"').capitalize() or "Linux"
        codename = fields.get("VERSION_CODENAME", "").strip('"')
        release = f"{name} {codename}".strip() if codename else fields.get("PRETTY_NAME", release).strip('"')
    return f"{release} ({target})"


def render_skeleton(
    requested: Sequence[str],
    found: Mapping[str, Template],
    closure: Collection[str],
    where: str,
) -> str:
    """The skeleton text: a header, then one section per package that asks questions (the
    requested packages first, in order, then the others by name)."""
    questions = [t for t in found.values() if t.type not in MESSAGE_TYPES]
    asking = {t.owner for t in questions}
    owners = [o for o in requested if o in asking] + sorted(asking - set(requested))
    pairs = password_pairs(found)
    no_default = [t for t in questions if _lacks_default(t)]
    summary = (
        f"{len(questions)} question(s) from {len(owners)} package(s),"
        f" {len(no_default)} without a default."
        if questions else "None of these packages asks a debconf question."
    )
    them = "them" if len(requested) > 1 else "it"
    header = render_data(
        "skeleton-header.in",
        packages=", ".join(requested),
        them=them,
        where=where,
        closure_count=str(len(set(closure))),
        summary=summary,
    )
    header = _rewrap_comments(header)
    sections = [header]
    for owner in owners:
        origin = "" if owner in requested else f" (installed with {them} by apt)"
        blocks = [f"# ==== {owner}{origin} ===="]
        blocks += [_question(t, pairs) for t in questions if t.owner == owner]
        sections.append("\n\n".join(blocks) + "\n")
    return "\n".join(sections)


def _lacks_default(template: Template) -> bool:
    return template.type in NEEDS_DEFAULT and not template.default.strip()


def _question(template: Template, pairs: Mapping[str, str]) -> str:
    lines = [template.description or template.name]
    facts = [template.type]
    if template.type == "password":
        confirm = [c for c, p in pairs.items() if p == template.name]
        facts.append("leave empty: vainstall generates it"
                     + (f" (and gives {confirm[0]} the same value)" if confirm else ""))
        if template.name in pairs:
            facts = [template.type, f"leave empty: vainstall gives it the value of {pairs[template.name]}"]
    elif _lacks_default(template):
        facts.append("!! no default")
    elif template.default:
        facts.append(f"default: {template.default}")
    else:
        facts.append("no default")
    lines.append("; ".join(facts))
    comments = [_comment(line) for line in lines]
    if template.type in ("select", "multiselect"):
        if template.choices is None:
            comments.append("# choices: computed by the package at install time")
        else:
            comments += _choices(template.choices)
    value = "" if template.type == "password" else template.default
    seed_line = f"#{template.owner} {template.name} {template.type} {value}".rstrip()
    return "\n".join(comments + [seed_line])


def _choices(choices: Sequence[str]) -> list[str]:
    """'# choices: a, b, c' over as many lines as needed, breaking only between choices."""
    lines = ["# choices:"]
    for index, choice in enumerate(choices):
        item = choice + ("," if index < len(choices) - 1 else "")
        if len(lines[-1]) + 1 + len(item) > WIDTH and lines[-1] != "# choices:" and lines[-1] != "#  ":
            lines.append("#  ")
        lines[-1] += " " + item
    return lines


def _comment(text: str) -> str:
    wrapped = textwrap.wrap(text, WIDTH - 2, subsequent_indent="    ", break_long_words=False,
                            break_on_hyphens=False) or [""]
    return "\n".join(f"# {line}".rstrip() for line in wrapped)


def _rewrap_comments(text: str) -> str:
    """Re-flow the header's comment paragraphs after substitution (names vary in length)."""
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.extend(f"# {line}" for line in textwrap.wrap(" ".join(paragraph), WIDTH - 2,
                                                             break_long_words=False,
                                                             break_on_hyphens=False))
            paragraph.clear()

    for line in text.splitlines():
        body = line.removeprefix("#").strip()
        if not body:
            flush()
            out.append("#")
        else:
            paragraph.append(body)
    flush()
    return "\n".join(out) + "\n"
