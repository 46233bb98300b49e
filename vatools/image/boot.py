"""What the tree needs to boot as a VM: root by label, DHCP, a serial console, first-boot work.

The first-boot unit regenerates what `clean` removed and grows the root filesystem to the
disk: the root partition is the last one, so `sfdisk` moves the GPT backup header to the
disk's end and extends it, then resize2fs grows ext4 online.

Booting fast (an appliance VM boots often, and tests boot it under TCG on one vCPU): the
initrd holds only the drivers a VM's root disk needs (INITRAMFS_FILES, put in place before
the kernel is installed, so its only initrd is the small one), and units an appliance does
not need at boot are masked (MASKED). The first boot shows on the console where its time
went (systemd-analyze), once the boot is finished.
"""

from __future__ import annotations

from pathlib import Path

from vatools.target import Target

ROOT_LABEL = "varoot"
ESP_LABEL = "VAESP"
KERNEL_OPTIONS = f"root=LABEL={ROOT_LABEL} ro console=tty0 console=ttyS0,115200 quiet"

FSTAB = f"""# vatools image: the root filesystem by label (the disk's UUIDs are per build)
LABEL={ROOT_LABEL} / ext4 errors=remount-ro 0 1
"""

NETWORK = """# vatools image: DHCP on every wired interface
[Match]
Name=en* eth*

[Network]
DHCP=yes
"""

FIRSTBOOT_SCRIPT = """#!/bin/sh
# vatools image first boot: grow the root filesystem to the disk, make this machine's keys
# (SSH host keys, ssl-cert's snakeoil pair).
set -u
root=$(findmnt -n -o SOURCE /)
part=$(basename "$(readlink -f "$root")")
if [ -e "/sys/class/block/$part/partition" ]; then
    number=$(cat "/sys/class/block/$part/partition")
    disk=/dev/$(basename "$(readlink -f "/sys/class/block/$part/..")")
    sfdisk --relocate gpt-bak-std "$disk" || true
    echo ', +' | sfdisk --no-reread --no-tell-kernel -N "$number" "$disk" || true
    partx -u "$disk" || true
    resize2fs "$root" || true
fi
echo "vatools image first boot: root filesystem $(df -m --output=size / | tail -1 | tr -d ' ') MiB"
export DEBIAN_FRONTEND=noninteractive
if command -v ssh-keygen >/dev/null; then ssh-keygen -A; fi
if command -v make-ssl-cert >/dev/null; then make-ssl-cert generate-default-snakeoil; fi
mkdir -p /var/lib/vatools
touch /var/lib/vatools/firstboot.done
echo "vatools image first boot: done"
"""

# MODULES=list: only these drivers (and what they depend on) go into the initrd, instead of
# every storage driver of the kernel (MODULES=most); udev loads the rest from the root.
# MODULES=dep would look at the build host's hardware, not the VM's.
INITRAMFS_MODULES = (
    "virtio_pci", "virtio_blk", "virtio_scsi",  # qemu/KVM, libvirt's default disk buses
    "ahci", "ata_piix", "sd_mod", "nvme",  # SATA, IDE and NVMe disks of other hypervisors
    "vmw_pvscsi", "hv_storvsc", "xen_blkfront",  # VMware, Hyper-V, Xen
    "crc32c_generic", "ext4",  # the root filesystem (ext4 checks metadata with crc32c)
)
INITRAMFS_FILES = {
    "/etc/initramfs-tools/conf.d/vatools-image.conf":
        "# vatools image: only the drivers of INITRAMFS_MODULES (modules.d/vatools-image)\nMODULES=list\n",
    "/usr/share/initramfs-tools/modules.d/vatools-image":
        "# vatools image: a VM's root disk and filesystem\n" + "".join(m + "\n" for m in INITRAMFS_MODULES),
}

# Units an appliance VM does not need at boot. Timers that index man pages or scrub LVM
# snapshots (there are none) only take the VM's CPU; the appliance's own timers stay.
MASKED = (
    "man-db.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
)

# The report's first and last lines on the console (tests and the bench look for them).
BOOT_REPORT_BEGIN = "vatools image boot report: begin"
BOOT_REPORT_END = "vatools image boot report: end"
BOOT_REPORT_SCRIPT = f"""#!/bin/sh
# vatools image: once the boot is finished, show on the console where its time went.
SYSTEMD_COLORS=0 SYSTEMD_PAGER= ; export SYSTEMD_COLORS SYSTEMD_PAGER
systemctl is-system-running --wait >/dev/null 2>&1
echo "{BOOT_REPORT_BEGIN}"
systemd-analyze time
systemd-analyze critical-chain
systemd-analyze blame | head -n 25
echo "{BOOT_REPORT_END}"
mkdir -p /var/lib/vatools
touch /var/lib/vatools/boot-report.done
"""

# First boot only (ConditionFirstBoot would not do: systemd 252 counts an empty machine-id
# as set up); not waited for: it waits for the boot itself.
BOOT_REPORT_UNIT = """[Unit]
Description=vatools image: where the first boot's time went (systemd-analyze, on the console)
ConditionPathExists=!/var/lib/vatools/boot-report.done

[Service]
Type=simple
ExecStart=/usr/lib/vatools/image-boot-report
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""

FIRSTBOOT_UNIT = """[Unit]
Description=vatools image first boot (grow root filesystem, host keys)
ConditionPathExists=!/var/lib/vatools/firstboot.done
After=local-fs.target
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/lib/vatools/image-firstboot
RemainAfterExit=yes
StandardOutput=journal+console
# Making keys is CPU work (RSA: seconds on a slow vCPU): the appliance's services go first,
# but not idle-only: a busy service must not hold back the keys (and ssh) for ever.
Nice=10

[Install]
WantedBy=multi-user.target
"""


def _write(target: Target, inside: str, text: str, mode: int = 0o644) -> None:
    path = target.path(inside)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _enable(target: Target, unit: str, wanted_by: str = "multi-user.target") -> None:
    # What `systemctl enable` does, without running systemctl against the tree.
    link = target.path(f"/etc/systemd/system/{wanted_by}.wants/{unit}")
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        source = "/etc/systemd/system" if target.path(f"/etc/systemd/system/{unit}").exists() else "/lib/systemd/system"
        link.symlink_to(f"{source}/{unit}")


def _mask(target: Target, unit: str) -> None:
    # What `systemctl mask` does, and the enabling links go too (`systemctl disable`).
    system = target.path("/etc/systemd/system")
    for wanted in system.glob(f"*.wants/{unit}"):
        wanted.unlink()
    link = system / unit
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/dev/null")


def configure(target: Target, hostname: str) -> None:
    _write(target, "/etc/fstab", FSTAB)
    _write(target, "/etc/hostname", hostname + "\n")
    _write(target, "/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost\n")
    _write(target, "/etc/systemd/network/80-vatools-dhcp.network", NETWORK)
    _enable(target, "systemd-networkd.service")
    _enable(target, "systemd-resolved.service")
    _write(target, "/usr/lib/vatools/image-firstboot", FIRSTBOOT_SCRIPT, 0o755)
    _write(target, "/etc/systemd/system/vatools-image-firstboot.service", FIRSTBOOT_UNIT)
    _enable(target, "vatools-image-firstboot.service")
    _write(target, "/usr/lib/vatools/image-boot-report", BOOT_REPORT_SCRIPT, 0o755)
    _write(target, "/etc/systemd/system/vatools-image-boot-report.service", BOOT_REPORT_UNIT)
    _enable(target, "vatools-image-boot-report.service")
    for unit in MASKED:
        _mask(target, unit)


def kernel_files(tree: Path) -> tuple[Path, Path]:
    """The (newest) kernel and initrd in the tree's /boot, for the ESP."""
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    initrds = sorted((tree / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise FileNotFoundError(f"no kernel or initrd in {tree}/boot")
    return kernels[-1], initrds[-1]
