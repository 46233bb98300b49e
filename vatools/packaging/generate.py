"""`vatools new`: scaffold a new appliance -- a Debian source package and its seed.

Three steps, so that nothing is written unless everything worked:

1. `make_spec()` validates what the packager typed (Debian policy, vatools.packaging.policy) into an
   `ApplianceSpec`;
2. `render()` turns the spec and a seed skeleton into the files, from the templates under
   vatools/data/appliance/ (debian/control is written with python-debian); pure, no I/O
   beyond reading the templates;
3. `write_appliance()` writes them into a staging directory beside the destination and
   renames them into place: `appliances/NAME/` and `seeds/NAME.seed` appear whole or not
   at all, and an existing appliance is replaced only with `force`.

`generate()` does all three, with the skeleton made from the real debconf templates of the
appliance's dependency closure (vatools.seed.skeleton).
"""

from __future__ import annotations

import email.utils
import os
import shutil
import tempfile
import textwrap
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from debian.deb822 import Deb822

from vatools import data
from vatools.appliance import SEED_SHA256_FIELD, SERVICES_FIELD
from vatools.packaging import policy
from vatools.errors import UsageError, VatoolsError
from vatools.packaging.policy import Relation
from vatools.run import Target

WEB_SERVERS = ("apache2", "nginx")
DEFAULT_VERSION = "1.0"
SEED_LINK_TARGET = "../../seeds/{name}.seed"
DESCRIPTION_WIDTH = 72


@dataclass(frozen=True)
class ApplianceSpec:
    """What the packager asked for, validated."""

    name: str
    depends: tuple[Relation, ...]  # as typed, without the web server
    synopsis: str
    maintainer: str
    web: str | None
    services: tuple[str, ...]
    version: str
    date: datetime  # of the changelog entry, timezone-aware

    @property
    def relations(self) -> tuple[str, ...]:
        """The Depends entries: the packages asked for, then the web server."""
        found = [str(r) for r in self.depends]
        if self.web and self.web not in self.packages_named:
            found.append(self.web)
        return tuple(found)

    @property
    def packages_named(self) -> tuple[str, ...]:
        return tuple(name for r in self.depends for name, _, _ in r.alternatives)

    @property
    def packages(self) -> tuple[str, ...]:
        """The packages apt installs for the appliance (first alternatives), for the skeleton."""
        names = [r.first_name for r in self.depends]
        if self.web and self.web not in self.packages_named:
            names.append(self.web)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class GeneratedFile:
    """A file to write, relative to the top of the tree; `link` makes it a symlink instead."""

    path: PurePosixPath
    text: str = ""
    mode: int = 0o644
    link: str | None = None


def make_spec(
    name: str,
    depends: str,
    *,
    description: str | None = None,
    maintainer: str | None = None,
    web: str | None = None,
    services: str | None = None,
    version: str = DEFAULT_VERSION,
    date: datetime | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ApplianceSpec:
    """Validate the packager's input; every refusal names the option and the value."""
    name = policy.check_package_name(name, "appliance name")
    relations = policy.parse_depends(depends)
    if name in {n for r in relations for n, _, _ in r.alternatives}:
        raise UsageError(f"--depends names the appliance itself ({name})",
                         hint="depend on the application, e.g. vatools new postfix-appliance"
                              " --depends postfix")
    if web is not None and web not in WEB_SERVERS:
        raise UsageError(f"--web {web!r}: choose one of {', '.join(WEB_SERVERS)}")
    main = relations[0].first_name
    synopsis = policy.check_synopsis(description if description is not None
                                     else f"single-purpose {main} server", name, "--description")
    if maintainer is None:
        maintainer = maintainer_from_environment(environ)
    maintainer = policy.check_maintainer(maintainer, "--maintainer")
    if services is None:
        service_names: tuple[str, ...] = (web,) if web else ()
    else:
        service_names = tuple(dict.fromkeys(
            policy.check_service(s) for s in services.split(",") if s.strip()))
    return ApplianceSpec(
        name=name,
        depends=relations,
        synopsis=synopsis,
        maintainer=maintainer,
        web=web,
        services=service_names,
        version=policy.check_version(version, native=True, what="--initial-version"),
        date=date or _now(environ),
    )


def maintainer_from_environment(environ: Mapping[str, str]) -> str:
    """'Name <mail>' from DEBFULLNAME and DEBEMAIL (or EMAIL), as dch finds it."""
    mail = environ.get("DEBEMAIL") or environ.get("EMAIL") or ""
    if "<" in mail:
        return mail
    name = environ.get("DEBFULLNAME") or environ.get("NAME") or ""
    if not (name and mail):
        raise UsageError(
            "no maintainer given",
            hint='pass --maintainer "Full Name <address>" (or set DEBFULLNAME and DEBEMAIL)',
        )
    return f"{name} <{mail}>"


def _now(environ: Mapping[str, str]) -> datetime:
    """Now, or SOURCE_DATE_EPOCH for reproducible output."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), timezone.utc)
    return datetime.now(timezone.utc).replace(microsecond=0)


# --- rendering: spec + skeleton -> files ------------------------------------------------------


def template_values(spec: ApplianceSpec) -> dict[str, str]:
    overrides = [f"unknown-field {SEED_SHA256_FIELD}"]
    if spec.services:
        overrides.append(f"unknown-field {SERVICES_FIELD}")
    return {
        "name": spec.name,
        "maintainer": spec.maintainer,
        "synopsis": spec.synopsis,
        "main": spec.depends[0].first_name,
        "depends": ", ".join(spec.relations),
        "services": " ".join(spec.services),
        "packages": " ".join(spec.packages),
        "version": spec.version,
        "date": email.utils.format_datetime(spec.date),
        "year": str(spec.date.year),
        "field_overrides": "\n".join(overrides),
    }


def render(spec: ApplianceSpec, skeleton: str) -> list[GeneratedFile]:
    """Every file of the new appliance, relative to the top of the tree, sorted by path."""
    values = template_values(spec)
    top = PurePosixPath("appliances") / spec.name
    files = []
    for relative, text in data.tree("appliance"):
        path = top / data.render(relative, values)
        if relative == "debian/control":
            content = render_control(text, values)
        else:
            content = data.render(text, values)
        files.append(GeneratedFile(path, content, 0o755 if content.startswith("#!") else 0o644))
    seed_path = PurePosixPath("seeds") / f"{spec.name}.seed"
    files.append(GeneratedFile(seed_path, data.render_data("seed-header.in", **values) + skeleton))
    files.append(GeneratedFile(top / f"{spec.name}.seed",
                               link=SEED_LINK_TARGET.format(name=spec.name)))
    return sorted(files, key=lambda f: str(f.path))


def render_control(template: str, values: Mapping[str, str]) -> str:
    """debian/control from its template: fields filled and written by python-debian; a field
    left empty (no services) is dropped; the long description is re-wrapped."""
    paragraphs = list(Deb822.iter_paragraphs(template.splitlines(keepends=True)))
    for para in paragraphs:
        for field in list(para.keys()):
            value = data.render(para[field], values)
            if field == "Description":
                value = wrap_description(value)
            if value.strip():
                para[field] = value
            else:
                del para[field]
    return "\n".join(str(para.dump()) for para in paragraphs)


def wrap_description(value: str) -> str:
    """Re-flow a control-file Description's long part (its " ." lines separate paragraphs)."""
    synopsis, _, long = value.partition("\n")
    paragraphs: list[list[str]] = [[]]
    for line in long.splitlines():
        if line.strip() == ".":
            paragraphs.append([])
        else:
            paragraphs[-1].append(line.strip())
    blocks = [textwrap.wrap(" ".join(p), DESCRIPTION_WIDTH, break_on_hyphens=False)
              for p in paragraphs if p]
    lines = [synopsis]
    for index, block in enumerate(blocks):
        if index:
            lines.append(" .")
        lines += [" " + line for line in block]
    return "\n".join(lines)


# --- writing: whole or not at all --------------------------------------------------------------


def destinations(top: Path, name: str) -> tuple[Path, Path]:
    return top / "appliances" / name, top / "seeds" / f"{name}.seed"


def refuse_existing(top: Path, name: str) -> None:
    found = [p for p in destinations(top, name) if p.exists() or p.is_symlink()]
    if found:
        raise VatoolsError(
            f"appliance {name} exists already: {', '.join(str(p) for p in found)}",
            hint="choose another name, or pass --force to replace it (nothing was changed)",
        )


def write_appliance(files: Sequence[GeneratedFile], top: Path, name: str, force: bool) -> list[Path]:
    """Write the files under `top`; returns the two paths made (appliance dir, seed)."""
    if not force:
        refuse_existing(top, name)
    finals = destinations(top, name)
    made_dirs = [d for d in (top, top / "appliances", top / "seeds") if not d.exists()]
    staging: Path | None = None
    done = False
    try:
        for directory in (top / "appliances", top / "seeds"):
            directory.mkdir(parents=True, exist_ok=True)
        # Beside the destination, so that the final renames stay on one file system.
        staging = Path(tempfile.mkdtemp(prefix=f".vatools-new-{name}-", dir=top))
        for item in files:
            _write_file(staging, item)
        _swap_in(staging, finals, name)
        done = True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not done:
            for directory in reversed(made_dirs):  # only what we made, and only when empty
                if directory.is_dir() and not any(directory.iterdir()):
                    directory.rmdir()
    return list(finals)


def _write_file(root: Path, item: GeneratedFile) -> None:
    path = root / item.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if item.link is not None:
        path.symlink_to(item.link)
        return
    path.write_text(item.text, encoding="utf-8")
    path.chmod(item.mode)


def _swap_in(staging: Path, finals: Sequence[Path], name: str) -> None:
    """Move the staged appliance dir and seed into place; old ones (--force) go only after."""
    new = [staging / "appliances" / name, staging / "seeds" / f"{name}.seed"]
    old_dir = staging / "old"
    old_dir.mkdir()
    moved_old: list[tuple[Path, Path]] = []
    moved_new: list[Path] = []
    try:
        for final in finals:
            if final.exists() or final.is_symlink():
                aside = old_dir / final.name
                final.rename(aside)
                moved_old.append((aside, final))
        for source, final in zip(new, finals):
            source.rename(final)
            moved_new.append(final)
    except BaseException:
        for final in moved_new:
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            else:
                final.unlink()
        for aside, final in moved_old:
            aside.rename(final)
        raise


# --- the whole command ----------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    appliance_dir: Path
    seed: Path
    files: tuple[GeneratedFile, ...]


def generate(spec: ApplianceSpec, top: Path, target: Target, force: bool = False,
             skeleton: str | None = None) -> Generated:
    """Scaffold `spec` under `top`; the seed skeleton comes from apt on `target` unless given."""
    if not force:
        refuse_existing(top, spec.name)  # before minutes of downloading
    if skeleton is None:
        from vatools.seed.skeleton import seed_skeleton

        skeleton = seed_skeleton(target, list(spec.packages))
    files = render(spec, skeleton)
    appliance_dir, seed = write_appliance(files, top, spec.name, force)
    return Generated(appliance_dir, seed, tuple(files))
