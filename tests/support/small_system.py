"""A small system for tests of the seed policy without apt: real .debs and a debconf database.

`build_deb` makes a real binary package with dpkg-deb (control, templates, config script);
`write_debconf_db` writes a target's /var/cache/debconf database in debconf's own File-driver
format, as if the packages owning the templates were installed.  Both take real templates
files (tests/data/...), so the policy meets the questions real packages ask.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from debian.deb822 import Deb822

DATA = Path(__file__).resolve().parent.parent / "data"
PROBE_QUESTIONS = DATA / "packages/probe-questions/debian"
# A seed answering every question of probe-questions (its passwords left to be generated).
FULL_SEED = (
    "probe-questions probe-questions/name string probe-one\n"
    "probe-questions probe-questions/enabled boolean true\n"
    "probe-questions probe-questions/color select green\n"
    "probe-questions probe-questions/features multiselect alpha, gamma\n"
    "probe-questions probe-questions/password password\n"
    "probe-questions probe-questions/confirm password\n"
)
LIBC6_TEMPLATES = DATA / "generate/slapd-web/templates/libc6.templates"


def build_deb(
    directory: Path,
    package: str,
    *,
    depends: str = "",
    templates: Path | None = None,
    config: Path | None = None,
    version: str = "1.0",
) -> Path:
    """A binary package `package` built in `directory` with dpkg-deb; returns its .deb."""
    tree = directory / f"{package}-tree"
    control_dir = tree / "DEBIAN"
    control_dir.mkdir(parents=True)
    fields = [
        f"Package: {package}",
        f"Version: {version}",
        "Architecture: all",
        "Maintainer: vatools tests <tests@example.org>",
        *([f"Depends: {depends}"] if depends else []),
        f"Description: {package}, built by a vatools test",
    ]
    (control_dir / "control").write_text("\n".join(fields) + "\n")
    if templates is not None:
        # What po2debconf makes of a source templates file: translatable fields lose the "_".
        text = "\n".join(line.removeprefix("_") for line in templates.read_text().splitlines())
        (control_dir / "templates").write_text(text + "\n")
    if config is not None:
        (control_dir / "config").write_text(config.read_text())
        (control_dir / "config").chmod(0o755)
    deb = directory / f"{package}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def write_debconf_db(root: Path, owner: str, templates: Path, answers: dict[str, str]) -> None:
    """Register the templates of `templates` in root's debconf database, owned by `owner`,
    with `answers` (question -> value) as the stored values: what installing `owner` leaves."""
    db = root / "var/cache/debconf"
    db.mkdir(parents=True, exist_ok=True)
    template_paras, config_paras = [], []
    for para in Deb822.iter_paragraphs(templates.read_text().splitlines(keepends=True)):
        name = para["Template"]
        # debconf's templates.dat: Name first, the untranslated fields.
        fields = {"Name": name, **{k: v for k, v in para.items() if k != "Template"}}
        template_paras.append(_paragraph(fields))
        config = {"Name": name, "Template": name}
        if name in answers:
            config["Value"] = answers[name]
        config["Owners"] = owner
        if name in answers:
            config["Flags"] = "seen"
        config_paras.append(_paragraph(config))
    (db / "templates.dat").write_text("\n".join(template_paras))
    (db / "config.dat").write_text("\n".join(config_paras))


def _paragraph(fields: dict[str, str]) -> str:
    lines = []
    for key, value in fields.items():
        first, *rest = value.split("\n")
        lines.append(f"{key}: {first}".rstrip())
        lines.extend(f" {line.strip() or '.'}" for line in rest)
    return "\n".join(lines) + "\n"
