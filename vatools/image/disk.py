"""A bootable GPT disk written into a plain file: no loop devices, no mounts, no KVM.

Layout (512-byte sectors):

    p1  BIOS boot   1 MiB    GRUB's core.img (BIOS path; boot.img's code is in the MBR)
    p2  ESP       256 MiB    FAT: systemd-boot as EFI/BOOT/BOOTX64.EFI, kernel, initrd
    p3  root      the rest   ext4 labelled varoot, filled from the tree by `mke2fs -d`

The FAT image is made apart with mkfs.fat and filled with mtools, then copied into place;
ext4 is written straight into the disk file at the partition's offset (`mke2fs -E offset`).
Both boot paths boot the same kernel with the same options (root=LABEL=varoot, serial
console). The raw disk is converted to a zstd-compressed qcow2.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from vatools.errors import VatoolsError
from vatools.image.boot import ESP_LABEL, KERNEL_OPTIONS, ROOT_LABEL, kernel_files
from vatools.run import run

SECTOR = 512
BIOS_START, BIOS_SECTORS = 2048, 2048
ESP_START, ESP_SECTORS = 4096, 256 * 2048
ROOT_START = ESP_START + ESP_SECTORS
GPT_BACKUP_SECTORS = 33
BIOS_BOOT_TYPE = "21686148-6449-6E6F-744E-656564454649"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"  # Linux root (x86-64)
SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
GRUB_PC = Path("/usr/lib/grub/i386-pc")
# Modules of the BIOS core image: read GPT and ext4, find the root by label, boot Linux.
GRUB_MODULES = ("biosdisk", "part_gpt", "ext2", "search", "search_label", "linux", "boot")
# Offsets in GRUB's boot.img and diskboot.img (grub-core/boot/i386/pc), as grub-setup patches them.
BOOT_KERNEL_SECTOR = 0x5C
BOOT_DRIVE_CHECK = 0x66
DISKBOOT_BLOCKLIST = SECTOR - 12  # {u64 start, u16 length, u16 segment}
# Free space the ext4 needs beyond the files: metadata, journal, and room to run.
ROOT_OVERHEAD = 1.25


@dataclass(frozen=True)
class DiskLayout:
    size: int
    root_sectors: int

    @property
    def root_offset(self) -> int:
        return ROOT_START * SECTOR


def layout(size: int) -> DiskLayout:
    sectors = size // SECTOR
    root = sectors - ROOT_START - GPT_BACKUP_SECTORS
    return DiskLayout(size=sectors * SECTOR, root_sectors=root - root % 8)


def tree_bytes(tree: Path) -> int:
    """Space the files take (4 KiB blocks), without following links or leaving the tree."""
    total = 0
    for dirpath, dirs, files in os.walk(tree):
        for name in files + dirs:
            st = os.lstat(os.path.join(dirpath, name))
            total += (st.st_size + 4095) // 4096 * 4096
    return total


def check_fits(tree: Path, size: int) -> None:
    needed = int(tree_bytes(tree) * ROOT_OVERHEAD) + ROOT_START * SECTOR
    if needed > size:
        raise VatoolsError(
            f"--size {size >> 20} MiB is too small: the tree needs about {needed >> 20} MiB",
            hint=f"give --size {(needed >> 30) + 1}G or more; nothing was kept",
        )


def partition(disk: Path, lay: DiskLayout) -> None:
    with open(disk, "wb") as handle:
        handle.truncate(lay.size)
    script = (
        "label: gpt\nunit: sectors\n"
        f"start={BIOS_START}, size={BIOS_SECTORS}, type={BIOS_BOOT_TYPE}, name=bios\n"
        f"start={ESP_START}, size={ESP_SECTORS}, type={ESP_TYPE}, name=esp\n"
        f"start={ROOT_START}, size={lay.root_sectors}, type={ROOT_TYPE}, name=root\n"
    )
    run(["sfdisk", "--no-reread", "--no-tell-kernel", str(disk)], input=script)


def esp_image(tree: Path, esp: Path, title: str) -> None:
    """The FAT ESP with systemd-boot and one entry (the tree's kernel and initrd)."""
    kernel, initrd = kernel_files(tree)
    run(["mkfs.fat", "-C", "-F", "32", "-n", ESP_LABEL, "--invariant", str(esp), str(ESP_SECTORS // 2)])
    image = ["-i", str(esp)]
    run(["mmd", *image, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries", "::/vatools"])
    loader = esp.with_suffix(".loader.conf")
    loader.write_text("default vatools.conf\ntimeout 0\nconsole-mode keep\n")
    entry = esp.with_suffix(".entry.conf")
    entry.write_text(
        f"title {title}\nlinux /vatools/vmlinuz\ninitrd /vatools/initrd.img\noptions {KERNEL_OPTIONS}\n"
    )
    run(["mcopy", *image, str(SYSTEMD_BOOT), "::/EFI/BOOT/BOOTX64.EFI"])
    run(["mcopy", *image, str(loader), "::/loader/loader.conf"])
    run(["mcopy", *image, str(entry), "::/loader/entries/vatools.conf"])
    run(["mcopy", *image, str(kernel), "::/vatools/vmlinuz"])
    run(["mcopy", *image, str(initrd), "::/vatools/initrd.img"])
    loader.unlink()
    entry.unlink()


def grub_core(work: Path) -> Path:
    """GRUB's BIOS core image with an embedded config that boots the root's kernel directly."""
    config = work / "grub-early.cfg"
    config.write_text(
        f"search --no-floppy --label {ROOT_LABEL} --set=root\n"
        f"linux /vmlinuz {KERNEL_OPTIONS}\n"
        "initrd /initrd.img\n"
        "boot\n"
    )
    core = work / "core.img"
    run([
        "grub-mkimage", "-O", "i386-pc", "-o", str(core), "-c", str(config),
        "-p", "(hd0,gpt3)/boot/grub", *GRUB_MODULES,
    ])
    config.unlink()
    return core


def install_bios_boot(disk: Path, core: Path) -> None:
    """What grub-install does on a GPT disk, done on the file: core.img into the BIOS boot
    partition (its first sector told where the rest is), boot.img's code into the MBR."""
    data = bytearray(core.read_bytes())
    sectors = (len(data) + SECTOR - 1) // SECTOR
    if sectors > BIOS_SECTORS:
        raise VatoolsError(f"GRUB core image is {len(data)} bytes, more than the BIOS boot partition")
    data += b"\0" * (sectors * SECTOR - len(data))
    segment = struct.unpack_from("<H", data, DISKBOOT_BLOCKLIST + 10)[0]
    struct.pack_into("<QHH", data, DISKBOOT_BLOCKLIST, BIOS_START + 1, sectors - 1, segment)
    boot = bytearray((GRUB_PC / "boot.img").read_bytes())
    struct.pack_into("<Q", boot, BOOT_KERNEL_SECTOR, BIOS_START)
    boot[BOOT_DRIVE_CHECK : BOOT_DRIVE_CHECK + 2] = b"\x90\x90"  # a hard disk, not a floppy
    with open(disk, "r+b") as handle:
        handle.seek(0)
        handle.write(boot[:440])  # the code only: the protective MBR's table stays
        handle.seek(BIOS_START * SECTOR)
        handle.write(data)


def write_root(tree: Path, disk: Path, lay: DiskLayout) -> None:
    blocks = lay.root_sectors * SECTOR // 4096
    run([
        "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", ROOT_LABEL, "-d", str(tree),
        "-E", f"offset={lay.root_offset},root_owner=0:0", str(disk), str(blocks),
    ])


def write_esp(disk: Path, esp: Path) -> None:
    with open(esp, "rb") as source, open(disk, "r+b") as handle:
        handle.seek(ESP_START * SECTOR)
        while chunk := source.read(1 << 20):
            handle.write(chunk)


def qcow2(raw: Path, out: Path) -> None:
    run(["qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", str(raw), str(out)])


def build_disk(tree: Path, work: Path, out: Path, size: int, title: str) -> None:
    """tree -> OUT (qcow2), using `work` for the raw disk and the ESP image."""
    lay = layout(size)
    raw, esp = work / "disk.raw", work / "esp.img"
    partition(raw, lay)
    esp_image(tree, esp, title)
    write_esp(raw, esp)
    esp.unlink()
    install_bios_boot(raw, grub_core(work))
    write_root(tree, raw, lay)
    qcow2(raw, out)
    raw.unlink()
