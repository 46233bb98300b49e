"""Seed skeletons rendered from real debconf templates (pure: no apt, no network)."""

from __future__ import annotations

import re
from pathlib import Path

from vatools.seed.check import check_against_templates
from vatools.seed.file import check_syntax, parse_seed
from vatools.seed.skeleton import describe_target, render_skeleton
from vatools.run import Target
from vatools.seed.templates import Template, parse_templates

DATA = Path(__file__).resolve().parents[1] / "data" / "generate"


def templates_of(*paths: str) -> dict[str, Template]:
    found: dict[str, Template] = {}
    for relative in paths:
        path = DATA / relative
        found.update(parse_templates(path.read_text(encoding="utf-8"), path.stem))
    return found


SLAPD = templates_of("slapd-web/templates/slapd.templates", "slapd-web/templates/libc6.templates")
POSTFIX = templates_of("postfix/templates/postfix.templates")


def seed_lines(skeleton: str) -> list[str]:
    """The commented-out seed lines: '#OWNER QUESTION TYPE [VALUE]'."""
    return [line for line in skeleton.splitlines() if re.match(r"#\S+ \S+/\S+ \S+", line)]


def uncomment_all(skeleton: str) -> str:
    lines = skeleton.splitlines()
    return "\n".join(line[1:] if line in seed_lines(skeleton) else line for line in lines) + "\n"


def test_every_question_is_listed_once_and_no_message_template() -> None:
    skeleton = render_skeleton(["postfix"], POSTFIX, {"postfix"}, "Debian bookworm (here)")
    listed = [line.split()[1] for line in seed_lines(skeleton)]
    questions = [t.name for t in POSTFIX.values() if t.type not in ("error", "note", "text", "title")]
    assert listed == questions
    assert "postfix/not_configured" not in skeleton  # an error message, not a question
    # Parsed as a seed, the skeleton answers nothing: every line is a comment.
    assert parse_seed(skeleton, "s.seed").selections == ()


def test_a_line_shows_type_default_choices_and_description() -> None:
    skeleton = render_skeleton(["postfix"], POSTFIX, {"postfix"}, "Debian bookworm (here)")
    block = skeleton.split("# General mail configuration type:\n", 1)[1].split("\n\n")[0]
    assert block.splitlines() == [
        "# select; default: Internet Site",
        "# choices: No configuration, Internet Site, Internet with smarthost, Satellite system,",
        "#   Local only",
        "#postfix postfix/main_mailer_type select Internet Site",
    ]


def test_questions_without_default_are_marked() -> None:
    skeleton = render_skeleton(["postfix"], POSTFIX, {"postfix"}, "Debian bookworm (here)")
    marked = re.findall(r"# \w+; !! no default\n(?:#.*\n)*?#postfix (\S+)", skeleton)
    assert marked == ["postfix/destinations", "postfix/relayhost", "postfix/protocols",
                      "postfix/root_address"]
    assert "4 without a default" in skeleton
    # A boolean without default is just false: said, not marked.
    assert "# boolean; no default\n#postfix postfix/procmail boolean\n" in skeleton


def test_passwords_stay_empty_and_name_their_confirmation() -> None:
    skeleton = render_skeleton(["slapd"], SLAPD, {"slapd", "libc6"}, "Debian bookworm (here)")
    assert "Password answers must stay empty" in skeleton
    assert ("# password; leave empty: vainstall generates it (and gives slapd/password2 the same"
            " value)\n#slapd slapd/password1 password\n") in skeleton
    assert "vainstall gives it the value of slapd/password1\n#slapd slapd/password2 password\n" in skeleton


def test_requested_packages_come_first_then_the_others_by_name() -> None:
    skeleton = render_skeleton(["slapd"], SLAPD, {"slapd", "libc6"}, "Debian bookworm (here)")
    sections = re.findall(r"^# ==== (.*) ====$", skeleton, re.MULTILINE)
    assert sections == ["slapd", "libc6 (installed with it by apt)"]
    assert "(2 packages)" in skeleton


def test_a_filled_in_skeleton_passes_the_seed_checks() -> None:
    skeleton = render_skeleton(["slapd"], SLAPD, {"slapd", "libc6"}, "Debian bookworm (here)")
    filled = uncomment_all(skeleton).replace(
        "slapd/domain string\n", "slapd/domain string example.org\n")
    seed = parse_seed(filled, "filled.seed")
    assert len(seed.selections) == len(seed_lines(skeleton))
    problems = check_syntax(seed) + check_against_templates(seed, SLAPD, {"slapd", "libc6"})
    assert [str(p) for p in problems] == []


def test_no_questions_at_all_is_said() -> None:
    skeleton = render_skeleton(["nginx"], {}, {"nginx", "nginx-common"}, "Debian trixie (here)")
    prose = " ".join(line.lstrip("# ") for line in skeleton.splitlines())
    assert "None of these packages asks a debconf question." in prose
    assert seed_lines(skeleton) == []


def test_comment_lines_stay_short() -> None:
    skeleton = render_skeleton(["slapd", "libc6"], SLAPD, {"slapd", "libc6"}, "Debian bookworm (x)")
    long_lines = [line for line in skeleton.splitlines()
                  if line.startswith("# ") and len(line) > 100]
    assert long_lines == []


def test_describe_target_names_the_release(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=debian\nVERSION_CODENAME=trixie\nPRETTY_NAME="x"\n')
    assert describe_target(Target(tmp_path)) == f"Debian trixie ({tmp_path})"
