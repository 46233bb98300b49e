"""vainstall: plan, preflight, seed, install, verify -- or roll back.

`prepare()` changes nothing on the system (it may fill apt's download cache): it resolves the
appliance with apt, downloads the packages apt will install (apt checks their hashes), picks
and verifies the seed, has the seed policy (vatools.seed.policy) judge it against the templates
of those very packages and of the installed ones, and returns a `Plan`.  `execute()` snapshots
what it will change, applies the seed, runs apt-get, and checks the result; any failure after
the first change is rolled back.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from vatools import aptq, aptrun, credentials, dpkgstatus, rollback
from vatools.appliance import (VIRTUAL_PACKAGE, install_record_path, read_seed_in_deb,
                               seed_beside, seed_in_package)
from vatools.seed import debconfdb, policy, templates
from vatools.errors import VatoolsError
from vatools.progress import ProgressBar, step
from vatools.target import Target
from vatools.seed.file import Problem, Seed, load_seed, parse_seed

LOG_FILE = "/var/log/vatools/vainstall.log"
LOCK_FILE = "/var/lib/vatools/lock"
DPKG_FRONTEND_LOCK = "/var/lib/dpkg/lock-frontend"


@dataclass(frozen=True)
class Request:
    name: str
    seed_file: Path | None = None
    overrides: tuple[tuple[str, str], ...] = ()  # --set QUESTION=VALUE, in order
    replace: bool = False
    target: Target = Target()
    lock_timeout: float = 120.0  # seconds to wait for another apt or dpkg to finish
    stall_timeout: float = 900.0  # seconds without progress from apt before giving up


@dataclass(frozen=True)
class SeedChoice:
    seed: Seed
    source: str  # "repository", "package" or "file"
    where: str  # the URI or path it came from
    sha256: str


@dataclass(frozen=True)
class Plan:
    request: Request
    appliance: aptq.Candidate
    seed: SeedChoice  # the effective seed: overrides applied, lines not asked here dropped
    generate: tuple[str, ...]  # password questions vainstall fills with generated values
    replaces: str | None
    changes: aptq.Changes
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    secrets: dict[str, str] = field(repr=False)
    secrets_file: Path | None
    seconds: float
    answer_warnings: tuple[str, ...]


class SeedRejected(VatoolsError):
    """The seed has errors; `problems` lists every one of them."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        errors = [p for p in problems if p.is_error]
        lines = [str(p) + (f"\n    hint: {p.hint}" if p.hint else "") for p in problems]
        super().__init__(
            f"the seed {name} has {len(errors)} error(s):\n  " + "\n  ".join(lines),
            hint="fix the seed (or override with --set QUESTION=VALUE); nothing was changed",
        )
        self.problems = problems


# --- planning: no change to the system -------------------------------------------------------


def prepare(request: Request) -> Plan:
    target = request.target
    step(f"Reading apt's package lists of {target}")
    cache = aptq.open_cache(target)
    appliance = aptq.candidate(cache, request.name)
    if not appliance.provides_appliance:
        raise VatoolsError(
            f"{request.name} is not an appliance: it does not provide {VIRTUAL_PACKAGE}",
            hint="`valist --available` lists the appliances apt can install",
        )
    replaces = appliance_to_replace(aptq.installed_appliances(cache), request)
    changes = aptq.mark_install(cache, request.name, replaces)
    refuse_removals(request, changes, replaces)
    choice = seed_before_download(request, appliance)
    step(f"Downloading {len(changes.install)} packages (apt verifies each one)")
    archives = aptq.fetch_archives(cache, aptq.acquire_progress(ProgressBar("Downloading")))
    if choice is None:
        choice = seed_from_package(appliance, archives)
    return plan_from_downloads(request, appliance, choice, replaces, changes, archives)


def plan_from_downloads(
    request: Request,
    appliance: aptq.Candidate,
    choice: SeedChoice,
    replaces: str | None,
    changes: aptq.Changes,
    archives: dict[str, Path],
) -> Plan:
    """The plan once apt has downloaded `archives`: the templates in play are those inside
    them and those of the target's debconf database."""
    # dbconfig-common's own templates may be installed already (for the questions it registers)
    installed = templates.from_debconf_db(request.target)[1]
    debs_packages, debs_templates = templates.from_debs(archives.values(), known=installed)
    installing = debs_packages | {name for name, _ in changes.install}
    in_play = policy.read_in_play(request.target, (installing, debs_templates))
    return build_plan(request, appliance, choice, replaces, changes, in_play)


def build_plan(
    request: Request,
    appliance: aptq.Candidate,
    choice: SeedChoice,
    replaces: str | None,
    changes: aptq.Changes,
    in_play: policy.InPlay,
) -> Plan:
    """The plan from what apt and the seed's source gave: the seed policy decides the seed.

    Raises SeedRejected, listing every problem, when the seed has errors."""
    verdict = policy.effective_seed(choice.seed, request.overrides, in_play)
    if verdict.errors:
        raise SeedRejected(choice.where, list(verdict.problems))
    return Plan(
        request=request,
        appliance=appliance,
        seed=replace(choice, seed=verdict.seed),
        generate=verdict.generate,
        replaces=replaces,
        changes=changes,
        warnings=verdict.warnings,
    )


def refuse_removals(request: Request, changes: aptq.Changes, replaces: str | None) -> None:
    """vainstall removes nothing but the appliance it replaces."""
    unexpected = sorted(set(changes.remove) - {replaces})
    if unexpected:
        raise VatoolsError(
            f"installing {request.name} would remove {', '.join(unexpected)}",
            hint="vainstall removes nothing but the appliance it replaces; resolve this with apt first",
        )


def appliance_to_replace(installed: list[str], request: Request) -> str | None:
    if request.name in installed:
        raise VatoolsError(
            f"{request.name} is already installed",
            hint="seeds are for the first install; upgrade it with apt-get upgrade",
        )
    if not installed:
        return None
    if not request.replace:
        raise VatoolsError(
            f"{installed[0]} is installed, and a system runs one appliance at a time",
            hint=f"`vainstall --replace {request.name}` removes {installed[0]} and installs"
            f" {request.name} (its data packages stay installed)",
        )
    return installed[0]


def seed_before_download(request: Request, appliance: aptq.Candidate) -> SeedChoice | None:
    """--seed FILE, else the repository's seed checked against the signed index, else None.

    Its syntax is judged later, with everything else, by the seed policy."""
    if request.seed_file is not None:
        seed = load_seed(request.seed_file)
        digest = aptq.sha256(request.seed_file.read_bytes())
        return SeedChoice(seed, "file", str(request.seed_file), digest)
    if not (appliance.seed_sha256 and appliance.uri.endswith(".deb")):
        return None
    uri = seed_beside(appliance.uri)
    data = aptq.fetch_uri(uri)
    if data is None:
        step(f"the repository publishes no seed at {uri}; using the one inside the package")
        return None
    digest = aptq.sha256(data)
    if digest != appliance.seed_sha256.lower():
        raise VatoolsError(
            f"the repository's seed {uri} does not match the signed index"
            f" (sha256 {digest}, expected {appliance.seed_sha256})",
            hint="the seed was changed after the repository was signed: republish the"
            " repository, or pass a seed you trust with --seed FILE; nothing was changed",
        )
    return SeedChoice(_parse_bytes(data, uri), "repository", uri, digest)


def seed_from_package(appliance: aptq.Candidate, archives: dict[str, Path]) -> SeedChoice:
    """The seed inside the appliance's .deb (which apt downloaded and verified)."""
    deb = archives.get(appliance.name)
    if deb is None:
        raise VatoolsError(f"the package file of {appliance.name} was not downloaded")
    data = read_seed_in_deb(deb, appliance.name, hint="pass a seed with --seed FILE")
    where = f"{deb}:{seed_in_package(appliance.name)}"
    return SeedChoice(_parse_bytes(data, where), "package", where, aptq.sha256(data))


def _parse_bytes(data: bytes, where: str) -> Seed:
    try:
        return parse_seed(data.decode("utf-8"), where)
    except UnicodeDecodeError as exc:
        raise VatoolsError(f"{where}: the seed is not valid UTF-8") from exc


# --- execution: every change is undone on failure --------------------------------------------


def execute(plan: Plan) -> Outcome:
    """Install; the caller holds exclusive(target) since before prepare()."""
    target = plan.request.target
    begun = time.monotonic()
    _wait_for_dpkg(target, plan.request.lock_timeout)
    before = rollback.take(target)
    secrets = _generated_secrets(plan)
    try:
        step("Seeding debconf")
        debconfdb.apply(target, _with_values(plan.seed.seed, secrets))
        _run_apt_get(plan)
        _verify_installed(target, plan.appliance.name)
    except BaseException as exc:
        rollback.roll_back(target, before, f"installing {plan.appliance.name}", exc, LOG_FILE)
    answer_warnings = _compare_answers(target, plan, secrets)
    secrets_file = credentials.store(target, plan.appliance.name, secrets) if secrets else None
    _forget_passwords(target, plan, secrets)
    _write_record(target, plan)
    return Outcome(plan, secrets, secrets_file, time.monotonic() - begun, answer_warnings)


@contextmanager
def exclusive(target: Target) -> Iterator[None]:
    """One vainstall at a time per system: hold this around prepare() and execute()."""
    path = target.path(LOCK_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise VatoolsError(
                "another vainstall is running on this system", hint="wait for it to finish"
            ) from exc
        yield


def _wait_for_dpkg(target: Target, limit: float) -> None:
    """Wait, visibly, while another apt or dpkg holds the lock; refuse after `limit` seconds."""
    path = target.path(DPKG_FRONTEND_LOCK)
    if not path.exists():
        return
    deadline = time.monotonic() + limit
    told = False
    with open(path, "w") as handle:
        while True:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise VatoolsError(
                        f"another apt or dpkg has held {DPKG_FRONTEND_LOCK} for {limit:.0f} s",
                        hint="let it finish, then run vainstall again (or raise --lock-timeout);"
                        " nothing was changed",
                    ) from exc
                if not told:
                    step(f"Waiting up to {limit:.0f} s for another apt or dpkg to finish")
                    told = True
                time.sleep(1)
                continue
            # Released at once: apt-get takes the lock itself a moment later.
            fcntl.lockf(handle, fcntl.LOCK_UN)
            return


def _generated_secrets(plan: Plan) -> dict[str, str]:
    return credentials.generate_for(plan.seed.seed, plan.generate)


def _with_values(seed: Seed, values: dict[str, str]) -> Seed:
    return credentials.with_values(seed, values)


def _run_apt_get(plan: Plan) -> None:
    packages = [plan.appliance.name] + ([f"{plan.replaces}-"] if plan.replaces else [])
    step(f"Installing {plan.appliance.name} and {len(plan.changes.install) - 1} more packages"
         f" (apt's output: {LOG_FILE})")
    bar = ProgressBar("Installing")
    aptrun.install(
        plan.request.target,
        packages,
        allow_removals=bool(plan.replaces),
        log_path=plan.request.target.path(LOG_FILE),
        bar=bar,
        stall_timeout=plan.request.stall_timeout,
        explain_stall=lambda package: _stall_suspects(plan.seed.seed, package),
    )
    bar.done(f"{plan.appliance.name} installed")


def _stall_suspects(seed: Seed, package: str) -> str:
    """The seeded answers that may make a config script ask forever."""
    by_owner: dict[str, list[str]] = {}
    for question, sel in seed.answers().items():
        by_owner.setdefault(sel.owner, []).append(question)
    # While apt preconfigures (apt-utils), no package is named: list every seeded one.
    suspects = {package: by_owner[package]} if package in by_owner else by_owner
    if not suspects:
        return ""
    listed = "; ".join(f"{owner}: {', '.join(qs)}" for owner, qs in suspects.items())
    return (
        ".\nA debconf config script asks again forever when it rejects an answer;"
        f" check the seed's answers ({listed})"
    )


def _verify_installed(target: Target, name: str) -> None:
    for pkg in dpkgstatus.read_status(target):
        if pkg.name == name and pkg.installed:
            return
    raise VatoolsError(f"apt-get finished but {name} is not installed (dpkg status)")


def _compare_answers(target: Target, plan: Plan, secrets: dict[str, str]) -> tuple[str, ...]:
    """Seeded answers that debconf no longer holds (a package may legitimately rewrite some)."""
    now = debconfdb.values(target)
    warnings = []
    for question, sel in plan.seed.seed.answers().items():
        if sel.type in ("password", "note", "text", "title") or question not in now:
            continue
        if now[question] != sel.value:
            warnings.append(f"{question}: seeded {sel.value!r}, debconf now holds {now[question]!r}")
    return tuple(warnings)


def _forget_passwords(target: Target, plan: Plan, secrets: dict[str, str]) -> None:
    """Blank the generated passwords in debconf's passwords.dat once the packages have used
    them: the copy that stays is the root-only secrets file."""
    answers = plan.seed.seed.answers()
    left = debconfdb.values(target)
    blanks = tuple(
        replace(answers[q], value="") for q in secrets if q in answers and left.get(q)
    )
    if blanks:
        debconfdb.apply(target, Seed("generated passwords", blanks))


def _write_record(target: Target, plan: Plan) -> None:
    """Remember where the seed came from, for valist and for support."""
    path = target.path(install_record_path(plan.appliance.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "name": plan.appliance.name,
        "version": plan.appliance.version,
        "seed": {"source": plan.seed.source, "where": plan.seed.where, "sha256": plan.seed.sha256},
        "replaced": plan.replaces,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", _record_time()),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def _record_time() -> time.struct_time:
    """Now, or SOURCE_DATE_EPOCH when set (image builds: the same inputs give the same files)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return time.gmtime(int(epoch)) if epoch.isdigit() else time.gmtime()
