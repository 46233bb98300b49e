"""apt's status-fd lines and dpkg's status file (pure parsing)."""

import io

from vatools.dpkgstatus import parse_status
from vatools.progress import ProgressBar, parse_status_line


def test_status_lines():
    line = parse_status_line("dlstatus:3:12.5:Retrieving file 3 of 9")
    assert (line.kind, line.percent, line.text) == ("dlstatus", 12.5, "Retrieving file 3 of 9")
    assert parse_status_line("pmerror:/var/cache/x.deb:50:a: message").text == "a: message"
    assert parse_status_line("random text") is None


def test_progress_without_a_terminal_prints_one_line_per_ten_percent():
    out = io.StringIO()
    bar = ProgressBar("Installing", out)
    for pct in (0, 3, 9, 10, 15, 55, 100):
        bar.update(pct, f"at {pct}")
    assert out.getvalue().splitlines() == [
        "Installing:   0% at 0",
        "Installing:  10% at 10",
        "Installing:  55% at 55",
        "Installing: 100% at 100",
    ]


def test_only_installed_packages_count_and_provides_are_parsed():
    text = (
        "Package: app\nStatus: install ok installed\nVersion: 1.0\n"
        "Provides: virtual-appliance, other (= 1)\nDescription: An app\n long text\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 2\n"
        "Provides: virtual-appliance\n"
    )
    pkgs = list(parse_status(text))
    assert [(p.name, p.installed) for p in pkgs] == [("app", True), ("gone", False)]
    assert pkgs[0].provides("virtual-appliance") and pkgs[0].provides("other")
    assert not pkgs[0].provides("virtual")
    assert pkgs[0].description == "An app"
