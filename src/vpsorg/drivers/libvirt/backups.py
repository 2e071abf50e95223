"""Backups on a libvirt host: copies of a machine's disk in a backup storage pool.

A backup of a running machine is libvirt's push-mode backup (``virDomainBackupBegin``):
QEMU copies the disk as it was when the job began while the guest keeps running, into a
qcow2 file that holds the whole disk (the base image's data included, so it outlives a
change of the base). Where the hypervisor offers no backup job, the guest is paused for
the copy instead. A stopped machine's disk is copied as a volume (``createXMLFrom``).

A copy is only a backup once its completion marker (a second, empty volume) exists: a
copy interrupted by a crash is thrown away and taken again. A restore replaces the
machine's overlay with a copy of the backup (the machine must be stopped), so the backup
stays usable and a restore can be repeated.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from typing import Any

import libvirt

from vpsorg.drivers.base import BackupInfo, PermanentDriverError
from vpsorg.drivers.libvirt import driver as lv
from vpsorg.drivers.libvirt.domain import disk_volume, pool_target_path, pool_xml

log = logging.getLogger(__name__)

JOB_POLL_SECONDS = 0.2
DONE_SUFFIX = ".done"


class BackupPool:
    """The backup pool of one driver: its name and where a dir pool made on demand lives."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path

    # -- the contract's operations (each runs in a worker thread) -------------------

    def backup(self, conn: Any, uri: str, name: str, backup_name: str, disks: Any) -> BackupInfo:
        pool = self.ensure(conn)
        lv.refresh(pool)
        if lv.lookup_volume(pool, backup_name + DONE_SUFFIX) is not None:
            return _info(lv.lookup_volume(pool, backup_name))
        lv.delete_volume(pool, backup_name)  # a copy a crash interrupted
        domain = lv.require_domain(conn, name)
        source = lv.lookup_volume(disks, disk_volume(name))
        if source is None:
            raise PermanentDriverError(f"machine {name} has no disk", code="disk_missing")
        if domain.isActive() and not self._push_backup(conn, domain, pool, backup_name):
            self._paused_copy(domain, pool, source, backup_name)
        elif not domain.isActive():
            _copy(pool, source, backup_name)
        pool.createXML(_volume_xml(backup_name + DONE_SUFFIX, 0, "raw"), 0)
        return _info(lv.lookup_volume(pool, backup_name))

    def restore(self, conn: Any, uri: str, name: str, backup_name: str, disks: Any) -> None:
        domain = lv.require_domain(conn, name)
        if domain.isActive():
            raise PermanentDriverError(f"machine {name} is running", code="not_stopped")
        pool = self.ensure(conn)
        lv.refresh(pool)
        backup = lv.lookup_volume(pool, backup_name)
        if backup is None or lv.lookup_volume(pool, backup_name + DONE_SUFFIX) is None:
            raise PermanentDriverError(
                f"backup {backup_name} does not exist", code="backup_missing"
            )
        lv.delete_volume(disks, disk_volume(name))
        _copy(disks, backup, disk_volume(name))

    def delete(self, conn: Any, uri: str, backup_name: str) -> None:
        pool = lv.lookup_pool(conn, self.name)
        if pool is None:
            return
        if not pool.isActive():
            pool.create(0)
        lv.refresh(pool)
        lv.delete_volume(pool, backup_name + DONE_SUFFIX)  # first: no longer a backup
        lv.delete_volume(pool, backup_name)

    # -- internals -------------------------------------------------------------------

    def ensure(self, conn: Any) -> Any:
        """The backup pool, defined, built and started if need be."""
        pool = lv.lookup_pool(conn, self.name)
        if pool is None:
            try:
                pool = conn.storagePoolDefineXML(pool_xml(self.name, self.path), 0)
                log.info("defined backup pool %s at %s", self.name, self.path)
            except libvirt.libvirtError:
                pool = lv.lookup_pool(conn, self.name)  # another worker defined it just now
                if pool is None:
                    raise
        if not pool.isActive():
            try:
                pool.build(0)
            except libvirt.libvirtError:
                if not pool.isActive():
                    raise
            try:
                pool.create(0)
            except libvirt.libvirtError:
                if not pool.isActive():
                    raise
        if not pool.autostart():
            pool.setAutostart(1)
        return pool

    def _push_backup(self, conn: Any, domain: Any, pool: Any, backup_name: str) -> bool:
        """Copy the running guest's disk with a backup job; False where there is none."""
        path = f"{pool_target_path(pool.XMLDesc(0)) or self.path}/{backup_name}"
        try:
            domain.backupBegin(_backup_xml(domain.XMLDesc(0), path), None, 0)
        except libvirt.libvirtError as exc:
            if lv._code(exc) == libvirt.VIR_ERR_NO_SUPPORT:
                return False
            raise
        while domain.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
            time.sleep(JOB_POLL_SECONDS)
        stats = domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
            raise PermanentDriverError(f"the backup job of {domain.name()} failed: {stats}")
        lv.refresh(pool)
        return True

    def _paused_copy(self, domain: Any, pool: Any, source: Any, backup_name: str) -> None:
        """Pause the guest for the copy: its disk does not change while it is read."""
        domain.suspend()
        try:
            _copy(pool, source, backup_name)
        finally:
            domain.resume()


def _copy(pool: Any, source: Any, name: str) -> Any:
    """A standalone qcow2 copy of ``source`` (its backing chain flattened) named ``name``."""
    xml = _volume_xml(name, int(source.info()[1]), "qcow2")
    try:
        return pool.createXMLFrom(xml, source, 0)
    except libvirt.libvirtError:
        if source.connect().getType() != "TEST":
            raise
        # libvirt's test driver copies only within one pool: an empty volume stands in.
        log.debug("libvirt's test driver cannot copy across pools; %s stays empty", name)
        return pool.createXML(xml, 0)


def _info(volume: Any) -> BackupInfo:
    if volume is None:
        raise PermanentDriverError("a completed backup lost its copy", code="backup_missing")
    return BackupInfo(allocated_bytes=int(volume.info()[2]))


def _volume_xml(name: str, capacity: int, fmt: str) -> str:
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", type=fmt)
    return ET.tostring(root, encoding="unicode")


def _backup_xml(domain_xml: str, path: str) -> str:
    """Back up the first disk (the machine's own) to ``path``; leave the others (the seed)."""
    root = ET.Element("domainbackup")
    disks = ET.SubElement(root, "disks")
    devices = ET.fromstring(domain_xml).findall("./devices/disk")
    for index, device in enumerate(devices):
        target = device.find("target")
        if target is None:
            continue
        if index == 0:
            disk = ET.SubElement(disks, "disk", name=target.get("dev", ""), backup="yes",
                                 type="file")  # fmt: skip
            ET.SubElement(disk, "target", file=path)
            ET.SubElement(disk, "driver", type="qcow2")
        else:
            ET.SubElement(disks, "disk", name=target.get("dev", ""), backup="no")
    return ET.tostring(root, encoding="unicode")
