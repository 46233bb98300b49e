"""Appliance images: one tree built like a server, written out as tar, qcow2 and OCI.

The stages, one module each:

    plan       check every input before any long work (appliance, suite, size, output dir)
    rootfs     mmdebstrap a minimal Debian, add our signed repository, vainstall inside it
    boot       what a booted disk needs: fstab by label, DHCP, serial console, first-boot unit
    clean      remove per-build and per-machine state (regenerated at first boot)
    tarball    a reproducible tar of the tree (sorted, clamped mtimes, numeric owners)
    disk       a GPT disk without loop devices: ESP (systemd-boot) + BIOS boot (GRUB) + ext4
    libvirt    the libvirt domain XML for the disk
    oci        an OCI image layout (one layer) with the config a container runtime needs
    manifest   the JSON description of the outputs
    build      runs the stages in order, in a staging directory renamed at the end
"""
