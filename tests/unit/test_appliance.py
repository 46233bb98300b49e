"""What an appliance is (vatools.appliance), and control fields folded over several lines read
whole by every reader: dpkg's status, valist's listing, the backup manifest, .deb control
files, Packages indexes and debian/control.

The .debs here are real ones made with dpkg-deb from tiny trees; the status files and indexes
are written in dpkg's and apt-ftparchive's own format.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from debian.deb822 import Deb822

from vatools import appliance, dpkgstatus, listing
from vatools.appliance import Appliance, ApplianceError
from vatools.backup.manifest import BackupManifest, ManifestError, installed_appliance
from vatools.controlfile import parse_paragraphs, relation_names
from vatools.errors import VatoolsError
from vatools.image.plan import Repository, appliance_version
from vatools.packaging import repo
from vatools.packaging.build import build_depends
from vatools.target import Target

TOP = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef" * 4

# An installed appliance whose Provides is folded over two lines and whose
# Vatools-Backup-Data is folded over three, as dpkg writes them into its status file.
FOLDED_STATUS = """\
Package: base-files
Status: install ok installed
Priority: required
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system.

Package: wiki-appliance
Status: install ok installed
Priority: optional
Section: metapackages
Installed-Size: 9
Maintainer: vatools developers <vatools@lists.example.org>
Architecture: all
Version: 2.0-1
Provides: wiki-engine-host,
 virtual-appliance
Depends: wikiengine (>= 1.0),
 apache2
Conflicts: virtual-appliance
Description: a test wiki appliance
 Its long description
 .
 has two paragraphs.
Vatools-Backup-Config: /etc/wiki
Vatools-Backup-Data: /var/lib/wiki/data
 /var/lib/wiki/users.txt
 /srv/wiki/media
Vatools-Seed-Sha256: {sha}
Vatools-Services: apache2
 postfix

Package: other-appliance
Status: deinstall ok config-files
Version: 1
Provides: virtual-appliance
""".replace("{sha}", SHA)


def status_tree(root: Path, text: str = FOLDED_STATUS) -> Target:
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text(text)
    return Target(root)


# --- the declaration ---------------------------------------------------------------------------


def test_from_fields_reads_every_declared_field() -> None:
    wiki = Appliance.from_fields(next(p for p in parse_paragraphs(FOLDED_STATUS)
                                      if p["Package"] == "wiki-appliance"))
    assert (wiki.name, wiki.version, wiki.description) == ("wiki-appliance", "2.0-1",
                                                           "a test wiki appliance")
    assert wiki.packages == ("wikiengine", "apache2")
    assert wiki.seed_sha256 == SHA
    assert wiki.services == ("apache2", "postfix")
    assert wiki.backup_config == ("/etc/wiki",)
    assert wiki.backup_data == ("/var/lib/wiki/data", "/var/lib/wiki/users.txt", "/srv/wiki/media")
    assert wiki.health == appliance.HealthChecks()
    assert wiki.hooks_dir == "/usr/share/vatools/appliances/wiki-appliance"
    assert wiki.seed_in_package == "/usr/share/vatools/seeds/wiki-appliance.seed"


def test_from_fields_name_and_version_stand_in_and_absent_fields_are_empty() -> None:
    bare = Appliance.from_fields({}, name="x", version="1")
    assert (bare.name, bare.version, bare.description, bare.packages) == ("x", "1", "", ())
    assert (bare.seed_sha256, bare.services) == (None, ())
    assert (bare.backup_config, bare.backup_data) == ((), ())
    # An empty seed field (substvar not computed) is no field, as both old readers had it.
    assert Appliance.from_fields({appliance.SEED_SHA256_FIELD: " "}).seed_sha256 is None
    assert Appliance.from_fields({appliance.SEED_SHA256_FIELD: SHA.upper()}).seed_sha256 == SHA


@pytest.mark.parametrize("fields, message", [
    ({"Vatools-Services": "apache2 $(reboot)"}, "'$(reboot)' is not a unit name"),
    ({"Vatools-Services": "apache2,postfix"}, "'apache2,postfix' is not a unit name"),
    ({"Vatools-Seed-Sha256": "abc"}, "'abc' is not a SHA-256"),
])
def test_from_fields_refuses_values_the_format_does_not_allow(fields: dict[str, str],
                                                              message: str) -> None:
    with pytest.raises(ApplianceError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("$", r"\$")) as raised:
        Appliance.from_fields(fields, name="x-appliance", version="1.0")
    assert raised.value.message.startswith("x-appliance 1.0 field Vatools-")
    assert raised.value.hint


def test_the_backup_manifest_error_is_the_declaration_error() -> None:
    # One class: code catching ManifestError also catches a refused declaration.
    assert ManifestError is ApplianceError
    assert issubclass(ApplianceError, VatoolsError)


@pytest.mark.parametrize("provides, answer", [
    ("virtual-appliance", True),
    ("virtual-appliance (= 1.0)", True),
    ("foo, virtual-appliance", True),
    ("foo,\n virtual-appliance", True),
    ("foo,\n\tvirtual-appliance (= 2)", True),
    ("virtual-appliance-helper", False),  # a longer name is another package
    ("my-virtual-appliance", False),
    ("", False),
])
def test_is_appliance_reads_provides_by_name(provides: str, answer: bool) -> None:
    assert appliance.is_appliance({"Provides": provides}) is answer


def test_relation_names_split_alternatives_versions_and_qualifiers() -> None:
    assert relation_names("a:any (>= 1) | b [amd64],\n c <!nocheck>,\n\n d") == ("a", "b", "c", "d")


def test_plugins_are_found_under_the_entry_point_group_appliance_py_names() -> None:
    from vatools.control import plugins

    assert plugins.GROUP == appliance.PLUGIN_ENTRY_POINTS


def test_seed_paths() -> None:
    assert appliance.seed_in_package("n") == "/usr/share/vatools/seeds/n.seed"
    assert appliance.seed_beside("pool/n_1.0_all.deb") == "pool/n_1.0_all.seed"
    assert repo.seed_file_name("n_1.0_all.deb") == appliance.seed_beside("n_1.0_all.deb")
    with pytest.raises(VatoolsError, match="n_1.0_all.udeb is not a .deb file name"):
        appliance.seed_beside("n_1.0_all.udeb")


def test_install_record(tmp_path: Path) -> None:
    target = Target(tmp_path)
    assert appliance.read_install_record(target, "wiki-appliance") is None
    record = tmp_path / appliance.install_record_path("wiki-appliance").lstrip("/")
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"name": "wiki-appliance", "seed": {
        "source": "repository", "where": "http://127.0.0.1/x.seed", "sha256": SHA}}))
    assert appliance.read_install_record(target, "wiki-appliance") == appliance.InstallRecord(
        "repository", "http://127.0.0.1/x.seed", SHA)
    record.write_text('{"seed": "not an object"}')
    assert appliance.read_install_record(target, "wiki-appliance") is None


# --- the format's spelling, held against the files that spell it ---------------------------------


def control_paragraphs(path: Path) -> list[Deb822]:
    with path.open(encoding="utf-8") as handle:
        return list(Deb822.iter_paragraphs(handle))


@pytest.mark.parametrize("control", sorted(
    [*TOP.glob("appliances/*/debian/control"), TOP / "vatools/data/appliance/debian/control.in",
     TOP / "tests/data/packages/probe-appliance/debian/control"]),
    ids=lambda p: p.parent.parent.name)
def test_appliance_sources_spell_the_format_as_appliance_py(control: Path) -> None:
    binaries = [p for p in control_paragraphs(control)[1:] if appliance.is_appliance(p)]
    assert binaries, f"{control} declares no appliance"
    for para in binaries:
        assert appliance.VIRTUAL_PACKAGE in relation_names(para["Conflicts"])
        ours = {k for k in para if k.startswith(appliance.SOURCE_FIELD_PREFIX + "Vatools-")}
        assert ours <= {appliance.SOURCE_FIELD_PREFIX + f for f in appliance.FIELDS}
        assert appliance.SOURCE_FIELD_PREFIX + appliance.SEED_SHA256_FIELD in ours
    install = control.parent / f"{binaries[0]['Package']}.install"
    if install.exists():
        assert appliance.SEEDS_DIR.lstrip("/") in install.read_text()


# --- folded fields through every reader ---------------------------------------------------------


def test_status_reader_keeps_folded_fields_whole(tmp_path: Path) -> None:
    packages = {p.name: p for p in dpkgstatus.read_status(status_tree(tmp_path))}
    wiki = packages["wiki-appliance"]
    assert wiki.provides("virtual-appliance") and wiki.provides("wiki-engine-host")
    assert wiki.fields["Vatools-Backup-Data"].split() == [
        "/var/lib/wiki/data", "/var/lib/wiki/users.txt", "/srv/wiki/media"]
    assert wiki.description == "a test wiki appliance"
    assert wiki.fields["Description"].endswith("\n .\n has two paragraphs.")
    assert not packages["other-appliance"].installed


def test_status_reader_agrees_with_python_debian() -> None:
    # The same values as deb822 (the reference parser), paragraph by paragraph.
    reference = [dict(p) for p in Deb822.iter_paragraphs(FOLDED_STATUS.splitlines(True))]
    assert list(parse_paragraphs(FOLDED_STATUS)) == reference


@pytest.mark.skipif(not Path(dpkgstatus.STATUS_FILE).is_file(), reason="no dpkg status here")
def test_status_reader_agrees_with_python_debian_on_this_systems_status() -> None:
    text = Path(dpkgstatus.STATUS_FILE).read_text("utf-8", "replace")
    reference = [dict(p) for p in Deb822.iter_paragraphs(text.splitlines(True))]
    assert list(parse_paragraphs(text)) == reference


def test_paragraph_edge_cases() -> None:
    text = ("# a comment\nSource: s\n\n \t\nPackage: p\nEmpty:\n first\n second\n"
            "\n\n\nPackage: q\r\n")
    assert list(parse_paragraphs(text)) == [
        {"Source": "s"}, {"Package": "p", "Empty": "\n first\n second"}, {"Package": "q"}]


def test_valist_listing_sees_an_appliance_whose_provides_is_folded(tmp_path: Path) -> None:
    target = status_tree(tmp_path)
    entries = listing.installed(target)
    assert [(e.name, e.version, e.description) for e in entries] == [
        ("wiki-appliance", "2.0-1", "a test wiki appliance")]
    assert entries[0].seed == "unknown (not installed by vainstall)"


def test_valist_command_lists_it(tmp_path: Path) -> None:
    # The real command, as a process, on a tree (--root): what `valist --installed` prints.
    status_tree(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from vatools.cli.valist import main; sys.exit(main())",
         "--installed", "--json", "--root", str(tmp_path)],
        capture_output=True, text=True, cwd=TOP, env={**os.environ, "PYTHONPATH": str(TOP)})
    assert result.returncode == 0, result.stderr
    assert [e["name"] for e in json.loads(result.stdout)] == ["wiki-appliance"]


def test_backup_manifest_gets_every_folded_backup_path(tmp_path: Path) -> None:
    found = installed_appliance(status_tree(tmp_path))
    assert found.dependencies == ("wikiengine", "apache2")
    manifest = found.manifest()
    assert [(r.path, r.kind) for r in manifest.roots] == [
        ("/etc/wiki", "config"), ("/var/lib/wiki/data", "data"),
        ("/var/lib/wiki/users.txt", "data"), ("/srv/wiki/media", "data")]
    assert manifest.services == ("apache2", "postfix")
    assert BackupManifest.of(appliance.installed(Target(tmp_path))) == manifest


def test_installed_refuses_none_several_and_a_tree_without_status(tmp_path: Path) -> None:
    with pytest.raises(VatoolsError, match="status .* is missing"):
        appliance.installed(Target(tmp_path))
    status_tree(tmp_path, FOLDED_STATUS.split("\n\n")[0] + "\n")
    with pytest.raises(VatoolsError, match="no appliance is installed"):
        appliance.installed(Target(tmp_path))
    second = FOLDED_STATUS.replace("Package: other-appliance\nStatus: deinstall ok config-files",
                                   "Package: other-appliance\nStatus: install ok installed")
    status_tree(tmp_path, second)
    with pytest.raises(VatoolsError, match="several appliances .*: wiki-appliance, other-app"):
        appliance.installed(Target(tmp_path))


# --- .debs: their control file, and the one reader of the seed inside ----------------------------

CONTROL = """\
Package: {name}
Version: 1.0
Architecture: all
Maintainer: vatools developers <vatools@lists.example.org>
Provides: wiki-engine-host,
 virtual-appliance
Conflicts: virtual-appliance
Vatools-Seed-Sha256: {sha}
Vatools-Backup-Data: /var/lib/wiki/data
 /var/lib/wiki/users.txt
 /srv/wiki/media
Description: test appliance
 Made by dpkg-deb for the unit tests.
"""
SEED = b"wikiengine wikiengine/title string Wiki\n"


def make_deb(tmp_path: Path, name: str = "wiki-appliance", *, seed_as: str | None = None,
             link: bool = False, field: bool = True) -> Path:
    """A real .deb (dpkg-deb --build) with the seed at /usr/share/vatools/seeds/SEED_AS."""
    tree = tmp_path / f"tree-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    control = CONTROL.format(name=name, sha=hashlib.sha256(SEED).hexdigest())
    if not field:
        control = "".join(line + "\n" for line in control.splitlines()
                          if not line.startswith(appliance.SEED_SHA256_FIELD))
    (tree / "DEBIAN/control").write_text(control)
    seeds = tree / appliance.SEEDS_DIR.lstrip("/")
    seeds.mkdir(parents=True)
    if seed_as is not None:
        (seeds / "real.data").write_bytes(SEED)
        if link:
            (seeds / seed_as).symlink_to("real.data")
        else:
            (seeds / seed_as).write_bytes(SEED)
    deb = tmp_path / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb


def test_deb_control_file_keeps_folded_fields(tmp_path: Path) -> None:
    from debian.debfile import DebFile

    with DebFile(str(make_deb(tmp_path, seed_as="wiki-appliance.seed"))) as package:
        control = package.debcontrol()
    assert appliance.is_appliance(control)
    assert Appliance.from_fields(control).backup_data == (
        "/var/lib/wiki/data", "/var/lib/wiki/users.txt", "/srv/wiki/media")


def test_the_seed_inside_is_read_at_its_exact_path(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, seed_as="wiki-appliance.seed")
    assert appliance.read_seed_in_deb(deb, "wiki-appliance") == SEED
    # Publishing reads it with the same reader, and the hash from the control file.
    assert repo.read_seed(deb) == (hashlib.sha256(SEED).hexdigest(), SEED)


def test_a_seed_under_another_name_is_refused_by_vainstall_and_publishing(tmp_path: Path) -> None:
    # The old publishing rule took the only seed in the directory; vainstall never did.
    deb = make_deb(tmp_path, seed_as="wiki.seed")
    for read in (lambda: appliance.read_seed_in_deb(deb, "wiki-appliance"),
                 lambda: repo.read_seed(deb)):
        with pytest.raises(ApplianceError, match="ships no seed at "
                           "/usr/share/vatools/seeds/wiki-appliance.seed") as raised:
            read()
        assert "debian/wiki-appliance.install" in (raised.value.hint or "")


def test_a_linked_seed_is_refused(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, seed_as="wiki-appliance.seed", link=True)
    with pytest.raises(ApplianceError, match="wiki-appliance.seed is not a regular file"):
        appliance.read_seed_in_deb(deb, "wiki-appliance")


def test_vainstall_hint_replaces_the_packagers(tmp_path: Path) -> None:
    deb = make_deb(tmp_path)
    with pytest.raises(ApplianceError) as raised:
        appliance.read_seed_in_deb(deb, "wiki-appliance", hint="pass a seed with --seed FILE")
    assert raised.value.hint == "pass a seed with --seed FILE"


def test_a_deb_without_the_seed_field_publishes_no_seed(tmp_path: Path) -> None:
    assert repo.read_seed(make_deb(tmp_path, seed_as="wiki-appliance.seed", field=False)) is None


def test_a_file_that_is_not_a_deb(tmp_path: Path) -> None:
    junk = tmp_path / "x_1.0_all.deb"
    junk.write_bytes(b"not an ar archive")
    with pytest.raises(VatoolsError, match="x_1.0_all.deb is not a readable .deb"):
        appliance.read_seed_in_deb(junk, "x")


# --- a Packages index and debian/control ---------------------------------------------------------


def test_image_plan_finds_an_appliance_whose_provides_is_folded_in_the_index(
        tmp_path: Path) -> None:
    index = (
        "Package: wiki-appliance\nVersion: 2.0-1\nArchitecture: all\n"
        "Provides: wiki-engine-host,\n virtual-appliance\n"
        "Filename: ./wiki-appliance_2.0-1_all.deb\n"
        f"Vatools-Seed-Sha256: {SHA}\nDescription: a wiki\n\n"
        "Package: helper\nVersion: 1\nArchitecture: all\nProvides: virtual-appliance-helper\n"
        "Filename: ./helper_1_all.deb\nDescription: not an appliance\n"
    )
    with gzip.GzipFile(tmp_path / "Packages.gz", "wb", mtime=0) as gz:
        gz.write(index.encode())
    repository = Repository(tmp_path.as_uri() + "/", b"")
    assert appliance_version(repository, "wiki-appliance") == "2.0-1"
    with pytest.raises(VatoolsError, match="unknown appliance 'helper'") as raised:
        appliance_version(repository, "helper")
    assert raised.value.hint == "appliances there: wiki-appliance"


def test_debian_control_build_depends_folded_over_lines(tmp_path: Path) -> None:
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian/control").write_text(
        "Source: wiki-appliance\nBuild-Depends: debhelper-compat (= 13),\n dh-python,\n"
        "  python3-all\nBuild-Depends-Indep:\n pandoc\n\nPackage: wiki-appliance\n"
        "Architecture: all\nDescription: x\n y\n")
    assert build_depends(tmp_path) == (
        "build-essential, debhelper-compat (= 13), dh-python, python3-all, pandoc")
