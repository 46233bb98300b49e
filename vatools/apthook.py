"""apt's own installs and upgrades of an appliance get its seed: a `DPkg::Pre-Install-Pkgs` hook.

apt runs /usr/lib/vatools/apt-hook (configured in /etc/apt/apt.conf.d/69vatools, just before
debconf's `dpkg-preconfigure --apt` in 70debconf) with the transaction on the file descriptor
APT_HOOK_INFO_FD, in its protocol version 3: `VERSION 3`, apt's configuration, a blank line,
then one line per package.  A non-zero exit stops apt before dpkg changes anything.

What the hook does, by what the transaction does:

- installs an appliance not installed before: the seed (the repository's, checked against the
  signed index, else the one inside the .deb) is judged by the seed policy against the
  templates of every .deb of the transaction, exactly as vainstall judges it; errors stop apt
  (nothing was changed).  Otherwise empty passwords are generated, debconf's database is saved
  and the seed applied.
- swaps the installed appliance for another one (apt removes it for the Conflicts): stopped,
  `vainstall --replace` is the way to do that.
- upgrades or adds packages on a system with an appliance: questions new to this system that
  the transaction's packages ask are answered from the appliance's newest seed (`only_new`).
  Never stops apt: problems are warnings, logged in LOG_FILE.

`Vatools::Apt-Hook "false";` (an apt option: apt.conf.d or `-o`) turns the hook off; vainstall
passes `-o Vatools::Apt-Hook=vainstall` since it seeds its own runs.

>>> t = parse_info("VERSION 3\\nVatools::Apt-Hook=false\\nDPkg::Tools::Options::A%3db::Version=3\\n"
...                "\\nwiki - - none < 1.0 all none /var/cache/apt/archives/wiki_1.0_all.deb\\n"
...                "old 2.0 amd64 none > - - none **REMOVE**\\n")
>>> switch(t.config), t.config["DPkg::Tools::Options::A=b::Version"]
('off', '3')
>>> [(a.package, a.old_version, a.new_version, a.deb, a.removes) for a in t.actions]
[('wiki', None, '1.0', PosixPath('/var/cache/apt/archives/wiki_1.0_all.deb'), False), ('old', '2.0', None, None, True)]
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import unquote

from vatools.appliance import install_record_path, is_appliance, seed_in_package
from vatools.errors import VatoolsError
from vatools.target import Target

HOOK_OPTION = "Vatools::Apt-Hook"  # "false" turns the hook off
VAINSTALL = "vainstall"  # its value on vainstall's apt-get command lines: already seeded
LOG_FILE = "/var/log/vatools/apt-hook.log"
SAVED_DEBCONF = "/var/lib/vatools/apt-hook/debconf-before"  # the database before the last seed
# Generated passwords debconf holds until dpkg has configured their packages ("owner question"
# lines, no values): `apt-hook --after-dpkg` (DPkg::Post-Invoke) blanks them then.
TO_FORGET = "/var/lib/vatools/apt-hook/forget"
AFTER_DPKG = "--after-dpkg"
_OFF = ("false", "no", "off", "0", "disable", "disabled")
_log_target = Target()  # the system whose LOG_FILE the hook writes to (main's target)
_NO_VERSION = "-"


@dataclass(frozen=True)
class Action:
    """One package line of apt's hook protocol version 3."""

    package: str
    old_version: str | None  # None: not installed now
    new_version: str | None  # None: removed
    action: str  # a .deb path, **CONFIGURE** or **REMOVE**

    @property
    def deb(self) -> Path | None:
        return Path(self.action) if self.action.endswith(".deb") else None

    @property
    def removes(self) -> bool:
        return self.action == "**REMOVE**"


@dataclass(frozen=True)
class Transaction:
    config: Mapping[str, str]
    actions: tuple[Action, ...]

    @property
    def debs(self) -> list[Path]:
        return [a.deb for a in self.actions if a.deb is not None]


def parse_info(text: str) -> Transaction:
    """Parse what apt writes to a version 2 or 3 hook (its dump %-encodes keys and values)."""
    head, _, body = text.partition("\n\n")
    lines = head.splitlines()
    if not lines or lines[0].split()[:1] != ["VERSION"] or lines[0].split()[1:2] < ["2"]:
        raise ValueError("not apt's hook protocol version 2 or 3 (DPkg::Tools::Options::...::Version)")
    config = {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if sep:
            config[unquote(key)] = unquote(value)
    version3 = lines[0].split()[1] == "3"
    actions = []
    for line in body.splitlines():
        words = line.split()
        if version3 and len(words) == 9:  # name, old version arch multi-arch, <>=, new ..., action
            package, old, new, action = words[0], words[1], words[5], words[8]
        elif not version3 and len(words) == 5:  # name, old version, <>=, new version, action
            package, old, new, action = words[0], words[1], words[3], words[4]
        else:
            continue
        actions.append(Action(package, None if old == _NO_VERSION else old,
                              None if new == _NO_VERSION else new, action))
    return Transaction(config, tuple(actions))


def switch(config: Mapping[str, str]) -> str:
    """"on", "off" (Vatools::Apt-Hook "false") or "vainstall" (vainstall seeded this run)."""
    value = config.get(HOOK_OPTION, "").strip().lower()
    if value == VAINSTALL:
        return VAINSTALL
    return "off" if value in _OFF else "on"


@dataclass(frozen=True)
class Decision:
    kind: str  # "nothing", "refuse", "install" or "upgrade"
    appliance: str = ""
    action: Action | None = None  # the appliance's .deb in this transaction, if any
    message: str = ""
    hint: str = ""


def decide(installed: Sequence[str], actions: Sequence[Action], appliances: set[str]) -> Decision:
    """What the hook does with a transaction: `installed` are the appliances dpkg has now,
    `appliances` the packages of the transaction's .debs that are appliances.

    >>> new = Action("wiki", None, "1.0", "/c/wiki_1.0_all.deb")
    >>> decide([], [new], {"wiki"}).kind
    'install'
    >>> gone = Action("blog", "1.0", None, "**REMOVE**")
    >>> d = decide(["blog"], [new, gone], {"wiki"})
    >>> d.kind, d.hint
    ('refuse', '`vainstall --replace wiki` replaces blog (with a plan, a confirmation and rollback)')
    >>> decide(["blog"], [Action("libx", "1", "2", "/c/libx_2_all.deb")], set()).appliance
    'blog'
    >>> decide(["blog"], [gone], set()).kind
    'nothing'
    """
    new = [a for a in actions if a.deb and a.package in appliances and a.old_version is None]
    removing = {a.package for a in actions if a.removes}
    if new and installed:
        old = ", ".join(installed)
        return Decision(
            "refuse", new[0].package, new[0],
            f"this would remove the appliance {old} to install {new[0].package}: apt would swap"
            f" appliances without a seed check, a backup or a way back",
            f"`vainstall --replace {new[0].package}` replaces {old}"
            " (with a plan, a confirmation and rollback)",
        )
    if new:
        return Decision("install", new[0].package, new[0])
    upgraded = [a for a in actions if a.deb and a.package in appliances]
    if upgraded:
        return Decision("upgrade", upgraded[0].package, upgraded[0])
    staying = [name for name in installed if name not in removing]
    if staying and any(a.deb for a in actions):
        return Decision("upgrade", staying[0])
    return Decision("nothing")


# --- the entry point ---------------------------------------------------------------------------


def main(target: Target = Target(), argv: Sequence[str] | None = None) -> int:
    """Run as apt's hook; the exit status stops apt (non-zero) or lets it go on."""
    global _log_target
    _log_target = target
    if list(sys.argv[1:] if argv is None else argv) == [AFTER_DPKG]:
        return forget_used_passwords(target)
    try:
        transaction = read_info()
    except (OSError, ValueError) as exc:
        _warn(f"cannot read apt's hook information ({exc}); the seed was not applied")
        return 0
    state = switch(transaction.config)
    if state != "on":
        if state == "off" and _appliance_involved(target, transaction):
            _log(f"{HOOK_OPTION} is false: not seeding")
        return 0
    decision = Decision("nothing")
    try:
        decision = decide(_installed_appliances(target), transaction.actions,
                          _appliances_in(transaction.debs))
        if decision.kind == "refuse":
            raise VatoolsError(decision.message, decision.hint)
        if decision.kind == "install":
            assert decision.action is not None
            seed_install(target, decision.appliance, decision.action, transaction)
        elif decision.kind == "upgrade":
            seed_upgrade(target, decision.appliance, decision.action, transaction)
        return 0
    except VatoolsError as exc:
        if decision.kind == "upgrade":  # an upgrade is never stopped by a seed
            _warn(f"{exc}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
            _warn("the upgrade goes on without these answers")
            return 0
        _error(str(exc) + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return 1
    except Exception:  # noqa: BLE001 - a bug: say so, stop an install, never an upgrade
        _log(traceback.format_exc())
        if decision.kind in ("install", "refuse"):
            _error(f"internal error (a bug in vatools; the traceback is in {LOG_FILE});"
                   f" nothing was changed. `-o {HOOK_OPTION}=false` installs without the seed")
            return 1
        _warn(f"internal error (a bug in vatools; the traceback is in {LOG_FILE})")
        return 0


def read_info() -> Transaction:
    fd = int(os.environ.get("APT_HOOK_INFO_FD", "0"))
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace", closefd=False) as stream:
        return parse_info(stream.read())


def _installed_appliances(target: Target) -> list[str]:
    from vatools.appliance import installed_packages

    return [pkg.name for pkg in installed_packages(target)]


def _appliances_in(debs: Sequence[Path]) -> set[str]:
    """The packages among the .debs that provide virtual-appliance (control files only:
    python-apt's C++ reader, a few ms for each .deb of a large upgrade)."""
    import apt_inst
    import apt_pkg

    found = set()
    for deb in debs:
        try:
            section = apt_pkg.TagSection(apt_inst.DebFile(str(deb)).control.extractdata("control"))
        except (OSError, SystemError, LookupError) as exc:
            _log(f"cannot read the control file of {deb}: {exc}")
            continue
        if is_appliance({"Provides": section.get("Provides", "")}):
            found.add(section["Package"])
    return found


def _appliance_involved(target: Target, transaction: Transaction) -> bool:
    return bool(_installed_appliances(target)) or bool(_appliances_in(transaction.debs))


# --- installing an appliance ---------------------------------------------------------------------


def seed_install(target: Target, name: str, action: Action, transaction: Transaction) -> None:
    """Check the appliance's seed like vainstall and apply it; VatoolsError: nothing changed."""
    from vatools import credentials
    from vatools.install import SeedRejected
    from vatools.seed import debconfdb, policy

    _say(f"seeding {name} {action.new_version} (the apt hook of vatools; `vainstall` is the"
         " front door with a plan and rollback)")
    in_play = _in_play(target, transaction.debs)
    choice = _choose_seed(target, name, action, strict=True)
    verdict = policy.effective_seed(choice.seed, (), in_play)
    if verdict.errors:
        rejected = SeedRejected(choice.where, list(verdict.problems))
        raise VatoolsError(
            f"{rejected.message}\napt was stopped before changing anything",
            hint=f"fix the seed; or install with `vainstall {name} --seed FILE` or `--set"
            f" QUESTION=VALUE`; or without any seed: apt-get -o {HOOK_OPTION}=false install {name}",
        )
    for problem in verdict.warnings:
        _say(str(problem))
    secrets = credentials.generate_for(verdict.seed, verdict.generate)
    before = _apply(target, credentials.with_values(verdict.seed, secrets))
    try:
        _write_record(target, name, action.new_version or "", choice)
        if secrets:
            _keep_secrets(target, name, verdict.seed, secrets)
    except BaseException:
        debconfdb.restore(target, before)  # apt stops: nothing of the seed may stay
        raise
    _say(f"seeded {len(verdict.seed.answers())} answers from {choice.where}")


def _choose_seed(target: Target, name: str, action: Action, *, strict: bool):  # type: ignore[no-untyped-def]
    """The repository's seed of this very version, checked against the signed index, else
    the one inside the .deb apt verified.  Not `strict` (upgrades): a repository seed that
    cannot be fetched or checked gives way to the .deb's, with a warning."""
    from vatools import aptq
    from vatools.install import Request, seed_before_download, seed_from_package

    assert action.deb is not None
    candidate = _candidate(target, name)
    if candidate is None or candidate.version != action.new_version:
        candidate = aptq.Candidate(name, action.new_version or "", "", "", None, True)
    choice = None
    try:
        choice = seed_before_download(Request(name, target=target), candidate)
    except VatoolsError as exc:
        if strict:
            raise
        _warn(f"{exc}; using the seed inside {action.deb.name}")
    if choice is None:
        choice = seed_from_package(candidate, {name: action.deb})
    return choice


def _candidate(target: Target, name: str):  # type: ignore[no-untyped-def]
    """apt's candidate for NAME (its repository URI and signed seed digest), or None."""
    from vatools import aptq

    try:
        return aptq.candidate(aptq.open_cache(target), name)
    except VatoolsError as exc:
        _log(f"no candidate for {name}: {exc}")
        return None


def _in_play(target: Target, debs: Sequence[Path]):  # type: ignore[no-untyped-def]
    from vatools.seed import policy, templates

    installed = templates.from_debconf_db(target)[1]
    packages, found = templates.from_debs(debs, known=installed)
    return policy.read_in_play(target, (packages, found))


def _apply(target: Target, seed):  # type: ignore[no-untyped-def]
    """Save debconf's database, then apply the seed; a failure puts the database back.
    Returns the snapshot taken before."""
    from vatools.seed import debconfdb

    before = debconfdb.snapshot(target)
    _save_snapshot(target, before)
    try:
        debconfdb.apply(target, seed)
    except BaseException:
        debconfdb.restore(target, before)
        raise
    return before


def _save_snapshot(target: Target, snap) -> None:  # type: ignore[no-untyped-def]
    """debconf's database as it was before the hook's last seed, root-only."""
    directory = target.path(SAVED_DEBCONF)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    for name, data, _mode in snap.files:
        path = directory / name
        if data is None:
            path.unlink(missing_ok=True)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def _write_record(target: Target, name: str, version: str, choice) -> None:  # type: ignore[no-untyped-def]
    """The same record vainstall writes (valist shows where the seed came from)."""
    path = target.path(install_record_path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = time.gmtime(int(epoch)) if epoch.isdigit() else time.gmtime()
    record = {
        "name": name,
        "version": version,
        "seed": {"source": choice.source, "where": choice.where, "sha256": choice.sha256},
        "replaced": None,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", when),
        "installed_by": "apt-hook",
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def _keep_secrets(target: Target, name: str, seed, secrets: Mapping[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Store generated passwords root-only (beside earlier ones); show them once, on a
    terminal only: apt's output may be a log (unattended-upgrades, image builds)."""
    from vatools import credentials

    path = credentials.store(target, name, {**credentials.read(target, name), **secrets})
    _remember_to_forget(target, seed, secrets)
    if sys.stderr.isatty():
        lines = "\n".join(f"  {question}: {value}" for question, value in secrets.items())
        sys.stderr.write(f"vatools: generated passwords (shown once; stored root-only in"
                         f" {path}):\n{lines}\n")
    else:
        _say(f"generated {len(secrets)} password(s), stored root-only in {path}")


def _remember_to_forget(target: Target, seed, secrets: Mapping[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Note the generated passwords' questions (never their values) for `--after-dpkg`."""
    answers = seed.answers()
    path = target.path(TO_FORGET)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "a", encoding="utf-8") as pending:
        for question in secrets:
            pending.write(f"{answers[question].owner} {question}\n")


def forget_used_passwords(target: Target) -> int:
    """After dpkg (DPkg::Post-Invoke): blank in debconf the generated passwords whose packages
    are now configured, as vainstall does, so that the root-only secrets file is the one copy
    left; the others wait for a later run.  Never fails apt."""
    path = target.path(TO_FORGET)
    if not path.exists():
        return 0
    try:
        from vatools import dpkgstatus
        from vatools.seed import debconfdb
        from vatools.seed.file import Location, Seed, Selection

        configured = {pkg.name for pkg in dpkgstatus.read_status(target) if pkg.installed}
        pending = [line.split() for line in path.read_text().splitlines() if len(line.split()) == 2]
        held = debconfdb.values(target)
        done = [(owner, q) for owner, q in pending if owner in configured]
        blanks = tuple(Selection(owner, q, "password", "", Location(TO_FORGET, n))
                       for n, (owner, q) in enumerate(done, start=1) if held.get(q))
        if blanks:
            debconfdb.apply(target, Seed("generated passwords", blanks))
            _log(f"blanked {len(blanks)} generated password(s) in debconf: "
                 + ", ".join(s.question for s in blanks))
        left = [f"{owner} {q}\n" for owner, q in pending if owner not in configured]
        if left:
            path.write_text("".join(left))
        else:
            path.unlink()
    except Exception:  # noqa: BLE001 - after dpkg nothing may fail apt; the log says why
        _log(traceback.format_exc())
    return 0


# --- upgrades and additions on a system with an appliance -----------------------------------------


def seed_upgrade(target: Target, name: str, action: Action | None, transaction: Transaction) -> None:
    """Answer, from the appliance's newest seed, the questions the transaction's packages ask
    that this system has no answer for; raises VatoolsError only for the caller to warn."""
    from vatools import credentials
    from vatools.seed import policy

    debs = transaction.debs
    if not debs:
        return
    in_play = _in_play(target, debs)
    new = {q for q in in_play.installing if q not in in_play.answers}
    if not new:
        return
    choice = (_choose_seed(target, name, action, strict=False) if action is not None
              else _upcoming_seed(target, name))
    verdict = policy.effective_seed(choice.seed, (), in_play, only_new=True)
    # Only questions new to this system that this transaction's packages ask; a broken line
    # is skipped (with a warning), never the upgrade.
    skipped = {p.location for p in verdict.problems if p.is_error}
    selections = tuple(s for s in verdict.seed.selections
                       if s.question in new and s.location not in skipped)
    # Lines for questions not in play here are not this transaction's business.
    new_lines = {s.location for s in choice.seed.selections if s.question in new}
    for problem in verdict.problems:
        if (problem.is_error and problem.location in new_lines) or problem.code == "unanswered":
            _warn(str(problem))
    seed = replace(verdict.seed, selections=selections)
    if not selections:
        _log(f"{name}: {len(new)} new question(s), none answered by {choice.where}")
        return
    secrets = credentials.generate_for(seed, [q for q in verdict.generate if seed.answer(q)])
    _apply(target, credentials.with_values(seed, secrets))
    _say(f"answered {len(seed.answers())} new question(s) from {choice.where}: "
         + ", ".join(sorted(seed.answers())))
    if secrets:
        _keep_secrets(target, name, seed, secrets)


def _upcoming_seed(target: Target, name: str):  # type: ignore[no-untyped-def]
    """The seed of the version apt will upgrade NAME to (unattended-upgrades commits in
    steps: a new dependency may come before its appliance), else the installed one's."""
    import apt_pkg

    from vatools import aptq
    from vatools.install import Request, SeedChoice, seed_before_download, seed_from_package
    from vatools.seed.file import load_seed

    try:
        cache = aptq.open_cache(target)
        package = cache[name]
        installed, upcoming = package.installed, package.candidate
    except (VatoolsError, KeyError) as exc:
        _log(f"no candidate for {name}: {exc}")
        installed = upcoming = None
    if upcoming is not None and installed is not None and upcoming.version != installed.version:
        candidate = aptq.candidate(cache, name)
        try:
            choice = seed_before_download(Request(name, target=target), candidate)
            if choice is not None:
                return choice
        except VatoolsError as exc:
            _warn(str(exc))
        archives = Path(apt_pkg.config.find_dir("Dir::Cache::Archives"))
        version = upcoming.version.replace(":", "%3a")
        deb = archives / f"{name}_{version}_{upcoming.architecture}.deb"
        if deb.is_file():
            return seed_from_package(candidate, {name: deb})
    path = target.path(seed_in_package(name))
    if not path.is_file():
        raise VatoolsError(f"{name} ships no seed at {seed_in_package(name)}")
    from vatools.aptq import sha256

    return SeedChoice(load_seed(path), "installed", str(path), sha256(path.read_bytes()))


# --- output: apt's terminal (or log) and our own log ----------------------------------------------


def _say(message: str) -> None:
    sys.stderr.write(f"vatools: {message}\n")
    sys.stderr.flush()
    _log(message)


def _warn(message: str) -> None:
    _say(f"warning: {message}")


def _error(message: str) -> None:
    _say(f"error: {message}")


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    try:
        path = _log_target.path(LOG_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as log:
            for line in message.rstrip("\n").splitlines() or [""]:
                log.write(f"{stamp} [{os.getpid()}] {line}\n")
    except OSError:
        pass  # a read-only /var/log must not break apt
