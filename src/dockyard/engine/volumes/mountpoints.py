"""A container's mount points from its HostConfig (`Binds`, `Mounts`, `Tmpfs` is the spec's)
and its image's `Volumes`, parsed and checked as Docker parses them, before anything is made.

    Binds:  "/host/path:/dest[:opts]"   a bind (the host path made if missing, as -v does)
            "name:/dest[:opts]"         a named volume (made if missing)
            "/dest"                     an anonymous volume
            opts: ro|rw, z|Z (ignored: no SELinux here), nocopy, and one propagation
            (shared, rshared, slave, rslave, private, rprivate)
    Mounts: [{"Type": "bind"|"volume"|"tmpfs", "Source", "Target", "ReadOnly",
              "BindOptions": {"Propagation", "CreateMountpoint"},
              "VolumeOptions": {"NoCopy", "Labels", "DriverConfig": {"Name", "Options"}},
              "TmpfsOptions": {"SizeBytes", "Mode"}}]
    image Volumes: {"/dest": {}}        an anonymous volume unless something else mounts there
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.engine.errors import InvalidParameter

PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")


@dataclass
class MountPoint:
    type: str                     # bind | volume | tmpfs
    destination: str
    source: str = ""              # host path (bind), volume name (volume), "" (tmpfs)
    rw: bool = True
    mode: str = ""                # the options as given (docker inspect's "Mode")
    propagation: str = ""
    copy: bool = True             # volume: copy the image's content in on first use
    create_source: bool = False   # bind from -v: make the host path if missing
    driver: str = ""
    volume_labels: dict[str, str] = field(default_factory=dict)
    driver_options: dict[str, str] = field(default_factory=dict)
    tmpfs_size: int = 0
    tmpfs_mode: int = 0
    path: str = ""                # what is mounted: the bind source, the volume's _data
    created_anonymous: bool = False  # a volume made for this container (docker rm -v)

    def inspect(self) -> dict[str, Any]:
        """docker inspect's Mounts entry."""
        doc: dict[str, Any] = {"Type": self.type}
        if self.type == "volume":
            doc["Name"] = self.source
        doc.update({"Source": self.path if self.type != "tmpfs" else "",
                    "Destination": self.destination})
        if self.type == "volume":
            doc["Driver"] = self.driver or "local"
        doc.update({"Mode": self.mode, "RW": self.rw,
                    "Propagation": self.propagation or ("rprivate" if self.type == "bind"
                                                        else "")})
        return doc

    def oci(self) -> dict[str, Any]:
        """The OCI runtime spec's mount."""
        if self.type == "tmpfs":
            options = ["noexec", "nosuid", "nodev"]
            if not self.rw:
                options.append("ro")
            if self.tmpfs_size:
                options.append(f"size={self.tmpfs_size}")
            if self.tmpfs_mode:
                options.append(f"mode={self.tmpfs_mode:o}")
            return {"destination": self.destination, "type": "tmpfs", "source": "tmpfs",
                    "options": options}
        options = ["rbind", self.propagation or "rprivate"]
        if not self.rw:
            options.append("ro")
        return {"destination": self.destination, "type": "bind", "source": self.path,
                "options": options}

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> MountPoint:
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


def _spec_error(spec: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(f"invalid volume specification: '{spec}'" + (f": {why}" if why else ""))


def _destination(dest: str, spec: str) -> str:
    if not dest.startswith("/"):
        raise _spec_error(spec, f"invalid mount config for type \"volume\": invalid mount "
                                f"path: '{dest}' mount path must be absolute")
    clean = posixpath.normpath(dest)
    if clean == "/":
        raise _spec_error(spec, "invalid mount config for type \"bind\": invalid "
                                "specification: destination can't be '/'")
    return clean


def parse_bind(spec: str) -> MountPoint:
    """One `Binds` entry (a -v argument)."""
    if not spec or spec.count(":") > 2:
        raise _spec_error(spec)
    parts = spec.split(":")
    if len(parts) == 1:
        return MountPoint("volume", _destination(parts[0], spec), driver="local")
    if len(parts) == 2 and parts[1].startswith("/"):
        source, dest, mode = parts[0], parts[1], ""
    elif len(parts) == 2:  # "/dest:ro"
        source, dest, mode = "", parts[0], parts[1]
    else:
        source, dest, mode = parts
    if not source and len(parts) == 3:
        raise _spec_error(spec)
    mp = MountPoint("volume", _destination(dest, spec), mode=mode)
    for opt in filter(None, mode.split(",")):
        if opt in ("ro", "rw"):
            mp.rw = opt == "rw"
        elif opt in ("z", "Z"):
            pass
        elif opt == "nocopy":
            mp.copy = False
        elif opt in PROPAGATIONS:
            mp.propagation = opt
        else:
            raise _spec_error(spec, f"invalid mode: {opt}")
    if source.startswith("/"):
        mp.type, mp.source, mp.path = "bind", posixpath.normpath(source), posixpath.normpath(source)
        mp.create_source = True
        if not mp.copy:
            raise _spec_error(spec, "invalid mode: nocopy")
    elif source:
        if not _valid_volume_name(source):
            raise InvalidParameter(f"create {source}: \"{source}\" includes invalid characters "
                                   "for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" "
                                   "are allowed. If you intended to pass a host directory, use "
                                   "absolute path")
        mp.source, mp.driver = source, "local"
        if mp.propagation:
            raise _spec_error(spec, f"invalid mode: {mp.propagation}")
    else:
        mp.driver = "local"
    return mp


def _valid_volume_name(name: str) -> bool:
    if len(name) < 2 and not name.isalnum():
        return False
    ok = name[:1].isascii() and name[:1].isalnum()
    return ok and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)


def parse_mount(m: Any) -> MountPoint:
    """One `Mounts` entry (a --mount argument, as the API receives it)."""
    if not isinstance(m, Mapping):
        raise InvalidParameter("invalid mount config: not an object")
    kind = m.get("Type") or ""
    target = m.get("Target") or ""
    source = m.get("Source") or ""
    where = f"invalid mount config for type \"{kind}\""
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidParameter(f"mount type unknown: \"{kind}\"" if kind else
                               "invalid mount config: mount type unknown")
    if not isinstance(target, str) or not target:
        raise InvalidParameter(f"{where}: field Target must not be empty")
    if not target.startswith("/"):
        raise InvalidParameter(f"{where}: invalid mount path: '{target}' mount path must be "
                               "absolute")
    mp = MountPoint(kind, posixpath.normpath(target), rw=not m.get("ReadOnly"))
    if kind == "bind":
        if not source:
            raise InvalidParameter(f"{where}: field Source must not be empty")
        if not str(source).startswith("/"):
            raise InvalidParameter(f"{where}: invalid mount path: '{source}' mount path must "
                                   "be absolute")
        opts = m.get("BindOptions") or {}
        mp.source = mp.path = posixpath.normpath(source)
        mp.propagation = opts.get("Propagation") or ""
        if mp.propagation and mp.propagation not in PROPAGATIONS:
            raise InvalidParameter(f"{where}: invalid propagation mode: {mp.propagation}")
        mp.create_source = bool(opts.get("CreateMountpoint"))
    elif kind == "volume":
        opts = m.get("VolumeOptions") or {}
        mp.source, mp.driver = source, "local"
        mp.copy = not opts.get("NoCopy")
        mp.volume_labels = dict(opts.get("Labels") or {})
        driver = opts.get("DriverConfig") or {}
        if driver.get("Name") not in (None, "", "local"):
            raise InvalidParameter(f"{where}: volume driver {driver.get('Name')!r} is not "
                                   "available: only \"local\"")
        mp.driver_options = dict(driver.get("Options") or {})
        if source and not _valid_volume_name(source):
            raise InvalidParameter(f"{where}: invalid volume name {source!r}")
    else:
        if source:
            raise InvalidParameter(f"{where}: field Source must not be specified")
        opts = m.get("TmpfsOptions") or {}
        mp.tmpfs_size = int(opts.get("SizeBytes") or 0)
        mp.tmpfs_mode = int(opts.get("Mode") or 0)
    return mp


def plan(host_config: Mapping[str, Any], image_volumes: Mapping[str, Any] | None,
         config_volumes: Mapping[str, Any] | None = None) -> list[MountPoint]:
    """Every mount point of a container, in Docker's order of precedence: Binds, Mounts,
    then anonymous volumes for the image's and the config's Volumes that nothing else
    covers. Two user mounts at one destination: "Duplicate mount point: /x"."""
    points: list[MountPoint] = []
    seen: set[str] = set()
    binds = host_config.get("Binds") or []
    mounts = host_config.get("Mounts") or []
    if not isinstance(binds, Sequence) or isinstance(binds, str):
        raise InvalidParameter("invalid Binds: not a list")
    if not isinstance(mounts, Sequence) or isinstance(mounts, str):
        raise InvalidParameter("invalid Mounts: not a list")
    for mp in [parse_bind(b) if isinstance(b, str) else _not_string(b) for b in binds] + \
            [parse_mount(m) for m in mounts]:
        if mp.destination in seen:
            raise InvalidParameter(f"Duplicate mount point: {mp.destination}")
        seen.add(mp.destination)
        points.append(mp)
    tmpfs = host_config.get("Tmpfs") or {}
    for dest in {**(image_volumes or {}), **(config_volumes or {})}:
        clean = posixpath.normpath(dest) if dest.startswith("/") else ""
        if clean and clean not in seen and clean not in tmpfs:
            seen.add(clean)
            points.append(MountPoint("volume", clean, driver="local"))
    return points


def _not_string(b: Any) -> MountPoint:
    raise InvalidParameter(f"invalid volume specification: {b!r}")
