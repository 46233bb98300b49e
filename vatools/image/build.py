"""`vatools image build`: the stages in order, in a staging directory renamed at the end.

Everything is made in .OUTPUT.partial beside the output directory; only a complete build is
renamed to OUTPUT. On any failure or interrupt the staging directory is removed (after
checking that nothing below it is mounted), so a failed build leaves nothing behind.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from vatools.appliance import Appliance
from vatools.packaging.build import remove_tree
from vatools.dpkgstatus import read_status
from vatools.errors import VatoolsError
from vatools.image import boot, clean, disk, libvirt, manifest, oci, rootfs
from vatools.image.plan import ImagePlan, staging_dir
from vatools.image.tarball import write_tar
from vatools.run import run
from vatools.target import Target

DEFAULT_PORTS = ("80/tcp",)
# State a read-only container writes, beyond the appliance's own data and config dirs
# (/var/spool: mail queues, postfix's among them).
STATE_VOLUMES = ("/var/lib", "/var/log", "/var/cache", "/var/spool")


@dataclass(frozen=True)
class Result:
    output: Path
    files: dict[str, list[str]]
    secrets: Path | None
    manifest: Path
    seconds: float


class Stages:
    """Numbered progress lines on stderr: what runs now, and how long the last step took."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.started = time.monotonic()
        self._step_started = self.started

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if self.done:
            self.stream.write(f"  ({now - self._step_started:.0f} s)\n")
        self.done += 1
        self._step_started = now
        self.stream.write(f"vatools image: [{self.done}/{self.total}] {text}...")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write(f"  ({time.monotonic() - self._step_started:.0f} s)\n")
        self.stream.flush()


def installed_appliance(tree: Path, name: str) -> Appliance:
    """The appliance as dpkg in the tree records it (its declaration, read by vatools.appliance)."""
    for package in read_status(Target(tree)):
        if package.name == name and package.installed:
            return Appliance.from_fields(package.fields)
    raise VatoolsError(f"{name} is not installed in the image tree after vainstall")


def build(plan: ImagePlan, stream: TextIO = sys.stderr) -> Result:
    say = Stages(6 + len(plan.formats), stream)
    staging = staging_dir(plan.output)  # checked absent by the plan
    tree, out = staging / "tree", staging / "out"
    started = time.monotonic()
    staging.mkdir()  # outside the try: if another build made it meanwhile, it is not ours
    try:
        out.mkdir()
        say(f"mmdebstrap {plan.suite}: minimal Debian with kernel and systemd")
        rootfs.mmdebstrap(plan, tree)
        building = rootfs.BuildTree(plan, tree)
        building.prepare()
        say(f"installing vatools from {plan.repository.url}")
        building.install_vatools()
        say(f"vainstall {plan.name} in the tree")
        building.vainstall()
        secrets = building.take_secrets(out)
        say("configuring boot, network and first boot")
        building.finish()
        boot.configure(Target(tree), plan.name)
        declared = installed_appliance(tree, plan.name)
        oci.write_entrypoint(tree, list(declared.services))
        say("cleaning per-build and per-machine state")
        clean.clean(tree)
        size = disk.tree_bytes(tree)
        files: dict[str, list[str]] = {}
        for fmt in plan.formats:
            if fmt == "tar":
                say("writing the reproducible tar (zstd)")
                files["tar"] = [_write_tarball(plan, tree, out)]
            elif fmt == "qcow2":
                say(f"writing the {plan.size >> 20} MiB disk (GPT, ESP, BIOS boot, ext4) as qcow2")
                disk.check_fits(tree, plan.size)
                work = staging / "work"
                work.mkdir(exist_ok=True)
                image = out / f"{plan.name}.qcow2"
                disk.build_disk(tree, work, image, plan.size, f"{plan.name} {plan.version}")
                xml = out / f"{plan.name}.xml"
                xml.write_text(libvirt.domain_xml(plan.name, str(plan.output / image.name)))
                files["qcow2"] = [image.name, xml.name]
            elif fmt == "oci":
                say("writing the OCI image layout")
                layout = out / f"{plan.name}.oci"
                volumes = _volumes(declared)
                oci.write_layout(
                    tree, layout, name=plan.name, version=plan.version, volumes=volumes,
                    ports=list(DEFAULT_PORTS), source_date_epoch=plan.source_date_epoch,
                )
                files["oci"] = [layout.name]
        say("writing manifest.json")
        path = manifest.write_manifest(
            out, appliance=plan.name, version=plan.version, suite=plan.suite,
            source_date_epoch=plan.source_date_epoch, tree=tree, tree_bytes=size, outputs=files,
        )
        say.finish()
        out.rename(plan.output)
    except BaseException:
        stream.write("  failed\n")
        remove_tree(staging)
        raise
    remove_tree(staging)
    secrets_final = plan.output / secrets.name if secrets else None
    return Result(plan.output, files, secrets_final, plan.output / path.name, time.monotonic() - started)


def _write_tarball(plan: ImagePlan, tree: Path, out: Path) -> str:
    tar = out / f"{plan.name}.tar"
    with open(tar, "wb") as handle:
        write_tar(tree, handle, plan.source_date_epoch)
    # One thread: the compressed bytes must not depend on the machine's core count.
    run(["zstd", "-q", "-T1", "-3", "--rm", str(tar)])
    return tar.name + ".zst"


def _volumes(declared: Appliance) -> list[str]:
    # A directory below another volume is already writable.
    volumes = set(STATE_VOLUMES)
    for path in declared.backup_data + declared.backup_config:
        if not any(path == v or path.startswith(v + "/") for v in STATE_VOLUMES):
            volumes.add(path)
    return sorted(volumes)
