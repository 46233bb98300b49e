"""Pure logic of vatools.image: sizes, formats, disk layout, GRUB patching, cleaning, tar order."""

from __future__ import annotations

import io
import struct
import tarfile
from pathlib import Path

import pytest

from vatools.appliance import Appliance
from vatools.errors import UsageError
from vatools.image import boot, clean, disk, plan
from vatools.image.build import _volumes
from vatools.image.tarball import write_tar


def test_sizes_and_formats() -> None:
    assert plan.parse_size("2GiB") == 2 << 30
    assert plan.parse_size("1073741824") == 1 << 30
    with pytest.raises(UsageError, match="too small"):
        plan.check_size(plan.parse_size("512M"))
    assert plan.check_formats(["tar,qcow2", "tar"]) == ("tar", "qcow2")
    assert plan.check_formats([]) == ("tar",)
    with pytest.raises(UsageError, match="unknown format"):
        plan.check_formats(["vmdk"])


def test_output_must_be_new(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="exists"):
        plan.check_output(tmp_path)
    assert plan.check_output(tmp_path / "new") == tmp_path / "new"


def test_layout_leaves_room_for_the_backup_gpt() -> None:
    lay = disk.layout(3 << 30)
    end = disk.ROOT_START + lay.root_sectors
    assert end <= lay.size // disk.SECTOR - disk.GPT_BACKUP_SECTORS
    assert lay.root_sectors % 8 == 0  # whole 4 KiB blocks
    assert lay.root_offset == disk.ROOT_START * 512


def test_bios_boot_patches_like_grub_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grub = tmp_path / "grub"
    grub.mkdir()
    (grub / "boot.img").write_bytes(bytes(512))
    monkeypatch.setattr(disk, "GRUB_PC", grub)
    core = tmp_path / "core.img"
    first = bytearray(512)
    struct.pack_into("<QHH", first, disk.DISKBOOT_BLOCKLIST, 2, 0, 0x820)
    core.write_bytes(bytes(first) + b"x" * 1500)  # 4 sectors in all
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(3 << 20))
    disk.install_bios_boot(image, core)
    data = image.read_bytes()
    assert struct.unpack_from("<Q", data, disk.BOOT_KERNEL_SECTOR)[0] == disk.BIOS_START
    sector = disk.BIOS_START * 512
    start, length, segment = struct.unpack_from("<QHH", data, sector + disk.DISKBOOT_BLOCKLIST)
    assert (start, length, segment) == (disk.BIOS_START + 1, 3, 0x820)
    assert data[446:512] == bytes(66)  # the partition table area is not touched


def test_clean_removes_per_build_state(tmp_path: Path) -> None:
    for name in ("var/lib/apt/lists/x_Packages", "var/cache/apt/pkgcache.bin", "etc/machine-id",
                 "etc/ssh/ssh_host_ed25519_key", "var/log/apt/history.log", "var/log/dpkg.log.1",
                 "var/lib/dpkg/status-old", "etc/passwd-", "usr/lib/python3/dist-packages/m/__pycache__/m.pyc",
                 "var/lib/dpkg/status"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("state")
    removed = clean.clean(tmp_path)
    assert "var/lib/apt/lists/x_Packages" in removed and "etc/passwd-" in removed
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert (tmp_path / "var/log/apt/history.log").read_text() == ""
    assert not (tmp_path / "var/log/dpkg.log.1").exists()
    assert not (tmp_path / "usr/lib/python3/dist-packages/m/__pycache__").exists()
    assert (tmp_path / "var/lib/dpkg/status").read_text() == "state"


def test_clean_removes_the_secrets_every_copy_would_share(tmp_path: Path) -> None:
    """A random key made while the image was built differs per build and would be shared by
    every machine made from it: appliance-control's session key, the backup key, the apt
    hook's saved debconf database."""
    secrets = ("var/lib/appliance-control/session-key", "var/lib/vatools/backup-key",
               "var/lib/vatools/apt-hook/debconf-before/passwords.dat")
    for name in secrets:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("secret")
    clean.clean(tmp_path)
    assert not [name for name in secrets if (tmp_path / name).exists()]


def test_tar_clamps_times_and_keeps_runtime_dirs_empty(tmp_path: Path) -> None:
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hosts").write_text("x")
    (tmp_path / "etc/link").symlink_to("hosts")
    buffer = io.BytesIO()
    write_tar(tmp_path, buffer, 1000)
    members = tarfile.open(fileobj=io.BytesIO(buffer.getvalue())).getmembers()
    names = [m.name for m in members]
    assert names == [".", "./etc", "./etc/hosts", "./etc/link", "./proc"]
    assert all(m.mtime <= 1000 and m.uname == "" for m in members)


def test_container_volumes_hold_the_appliance_state() -> None:
    fields = {"Vatools-Backup-Config": "/etc/dokuwiki", "Vatools-Backup-Data": "/var/lib/dokuwiki"}
    assert _volumes(Appliance.from_fields(fields)) == ["/etc/dokuwiki", "/var/cache", "/var/lib",
                                                       "/var/log", "/var/spool"]


def test_boot_configuration_masks_idle_units_and_reports_the_first_boot(tmp_path: Path) -> None:
    from vatools.target import Target

    system = tmp_path / "etc/systemd/system"
    (system / "timers.target.wants").mkdir(parents=True)
    (system / "timers.target.wants/man-db.timer").symlink_to("/lib/systemd/system/man-db.timer")
    boot.configure(Target(tmp_path), "wiki")
    for unit in ("man-db.timer", "e2scrub_all.timer", "e2scrub_reap.service"):
        assert (system / unit).readlink() == Path("/dev/null")
    assert not (system / "timers.target.wants/man-db.timer").is_symlink()
    wants = system / "multi-user.target.wants"
    assert (wants / "vatools-image-boot-report.service").readlink() == (
        Path("/etc/systemd/system/vatools-image-boot-report.service"))
    unit = (system / "vatools-image-boot-report.service").read_text()
    assert "ConditionPathExists=!/var/lib/vatools/boot-report.done" in unit
    script = (tmp_path / "usr/lib/vatools/image-boot-report").read_text()
    assert "systemctl is-system-running --wait" in script and "systemd-analyze blame" in script
    assert f'echo "{boot.BOOT_REPORT_END}"' in script
    boot.configure(Target(tmp_path), "wiki")  # again: the links are already there


def test_the_initrd_holds_a_vm_root_disk_drivers_only() -> None:
    conf = boot.INITRAMFS_FILES["/etc/initramfs-tools/conf.d/vatools-image.conf"]
    assert "MODULES=list" in conf.splitlines()
    modules = boot.INITRAMFS_FILES["/usr/share/initramfs-tools/modules.d/vatools-image"].split()
    assert {"virtio_pci", "virtio_blk", "virtio_scsi", "ahci", "nvme", "ext4"} <= set(modules)


def test_a_tree_bigger_than_the_disk_is_refused_before_writing(tmp_path: Path) -> None:
    from vatools.errors import VatoolsError

    (tmp_path / "big").write_bytes(bytes(8 << 20))
    disk.check_fits(tmp_path, 1 << 30)
    with pytest.raises(VatoolsError, match="too small: the tree needs about"):
        disk.check_fits(tmp_path, disk.ROOT_START * disk.SECTOR + (4 << 20))
