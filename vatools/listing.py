"""valist: the appliances a system has installed and the ones apt can install.

Installed appliances come from dpkg's status file (milliseconds); available ones need apt's
cache (a few hundred milliseconds), which is opened only when asked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from vatools import appliance
from vatools.target import Target


@dataclass(frozen=True)
class ApplianceEntry:
    name: str
    state: str  # "installed" or "available"
    version: str | None  # the installed version
    candidate: str | None  # the version apt would install
    seed: str  # where the seed comes (or came) from
    description: str

    def as_json(self) -> dict[str, str | None]:
        return asdict(self)


def installed(target: Target) -> list[ApplianceEntry]:
    return [
        ApplianceEntry(
            name=pkg.name,
            state="installed",
            version=pkg.version,
            candidate=None,
            seed=_recorded_seed(target, pkg.name),
            description=pkg.description,
        )
        for pkg in appliance.installed_packages(target)
    ]


def _recorded_seed(target: Target, name: str) -> str:
    record = appliance.read_install_record(target, name)
    if record is None:
        return "unknown (not installed by vainstall)"
    return f"{record.seed_source}: {record.seed_where}"


def with_available(target: Target, entries: list[ApplianceEntry]) -> list[ApplianceEntry]:
    """Fill in candidates of installed appliances and add the ones apt can install."""
    from vatools import aptq

    cache = aptq.open_cache(target)
    by_name = {e.name: e for e in entries}
    result = []
    for pkg in cache.get_providing_packages(appliance.VIRTUAL_PACKAGE, include_nonvirtual=True):
        cand = pkg.candidate
        if cand is None:
            continue
        if pkg.name in by_name:
            result.append(replace(by_name.pop(pkg.name), candidate=cand.version))
            continue
        has_repo_seed = cand.record.get(appliance.SEED_SHA256_FIELD) is not None
        result.append(
            ApplianceEntry(
                name=pkg.name,
                state="available",
                version=None,
                candidate=cand.version,
                seed="repository (signed hash)" if has_repo_seed else "package",
                description=cand.summary or "",
            )
        )
    result.extend(by_name.values())
    return sorted(result, key=lambda e: (e.state != "installed", e.name))

