"""A libvirt domain for the qcow2 disk: UEFI (libvirt picks the firmware), virtio, serial console.

>>> xml = domain_xml("dokuwiki-appliance", "/srv/images/dokuwiki-appliance.qcow2")
>>> "<name>dokuwiki-appliance</name>" in xml and "firmware='efi'" in xml
True
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr


def domain_xml(name: str, disk_file: str, memory_mib: int = 1024, vcpus: int = 2) -> str:
    """The domain; libvirt wants the disk's absolute path: the place it was written to (edit
    <source file> when the disk is moved)."""
    return f"""<domain type='kvm'>
  <name>{escape(name)}</name>
  <description>vatools appliance image: {escape(name)}</description>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-model'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file={quoteattr(disk_file)}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
  </devices>
</domain>
"""
