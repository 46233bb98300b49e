"""System settings read and written with augeas: the postfix relay host (the mail smarthost).

Augeas edits one entry of main.cf and keeps every other line, comment and order as it was.
"""

from __future__ import annotations

from pathlib import Path

from vatools.errors import VatoolsError

MAIN_CF = "/etc/postfix/main.cf"
_NODE = "/files/etc/postfix/main.cf/relayhost"


def _augeas(root: str = "/"):  # type: ignore[no-untyped-def]
    import augeas  # python3-augeas

    # Load only the postfix lens: seconds faster than loading every lens on the system.
    aug = augeas.Augeas(root=root, flags=augeas.Augeas.NO_MODL_AUTOLOAD)
    aug.set("/augeas/load/Postfix_Main/lens", "Postfix_Main.lns")
    aug.set("/augeas/load/Postfix_Main/incl", MAIN_CF)
    aug.load()
    return aug


def postfix_installed(root: str = "/") -> bool:
    return Path(root, MAIN_CF.lstrip("/")).is_file()


def get_relayhost(root: str = "/") -> str:
    if not postfix_installed(root):
        raise VatoolsError("postfix is not installed on this appliance: there is no main.cf")
    value = _augeas(root).get(_NODE)
    return value or ""


def set_relayhost(value: str, root: str = "/") -> None:
    if not postfix_installed(root):
        raise VatoolsError("postfix is not installed on this appliance: there is no main.cf")
    aug = _augeas(root)
    if value:
        aug.set(_NODE, value)
    else:
        aug.remove(_NODE)
    try:
        aug.save()
    except OSError as e:
        errors = aug.match("/augeas//error")
        detail = "; ".join(f"{p}: {aug.get(p)}" for p in errors)
        raise VatoolsError(f"augeas could not save {MAIN_CF}: {e} {detail}") from None
