"""Platforms: the OCI `platform` object, the `os/arch/variant` text users type, and which
image a host can run.

The rules are containerd's (its `platforms` package), because Docker, BuildKit and every
registry client a user compares us with apply them, and an index resolved differently here
would pull a different image:

    specifier   <os>[(<os.version>)] | <arch> | <os>[(<os.version>)]/<arch>[/<variant>]
    "linux"          the host's architecture
    "arm64"          the host's os
    x86_64, x86-64   amd64          aarch64   arm64 (v8, the default, is written without)
    i386, i686       386            armhf     arm/v7 (the default arm, written without)
    macos            darwin         armel     arm/v6

Normalization drops the default variants (arm64/v8, amd64/v1) and fills arm's (v7), so
linux/arm64 and linux/arm64/v8 are one platform. A host also runs older variants of its
architecture; a matcher lists them best first and an index picks its first entry that fits:

    amd64/vN   amd64/vN-1 ... amd64/v1, then 386
    arm64/v8   arm/v8, arm/v7, arm/v6, arm/v5
    arm/v7     arm/v6, arm/v5

The os.version is not compared: on Linux it says nothing about what a kernel can run.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dockyard.image import jsonfields as jf
from dockyard.image.errors import InvalidArgument

T = TypeVar("T")

# Go's GOOS and GOARCH lists: a lone word is an os if it is one of these, else an architecture.
KNOWN_OS = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
    "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"})
KNOWN_ARCH = frozenset({
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le",
    "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc",
    "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm"})

_OS_PART = re.compile(r"([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?")
_PART = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Platform:
    """What an image or a host is built for; field names follow the OCI descriptor's."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        if self.features:
            out["features"] = list(self.features)
        return out

    @classmethod
    def from_json(cls, obj: object, where: str = "platform") -> Platform:
        """The object as written, not normalized: it round-trips, and matching normalizes."""
        o = jf.expect_object(obj, where)
        return cls(
            os=jf.require_str(o, "os", where, nonempty=True),
            architecture=jf.require_str(o, "architecture", where, nonempty=True),
            variant=jf.get_str(o, "variant", where) or None,
            os_version=jf.get_str(o, "os.version", where) or None,
            os_features=jf.get_str_list(o, "os.features", where),
            features=jf.get_str_list(o, "features", where),
        )


def _normalize_os(name: str) -> str:
    if not name:
        return host().os
    name = name.lower()
    return "darwin" if name == "macos" else name


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    match arch:
        case "i386" | "i686":
            return "386", ""
        case "x86_64" | "x86-64" | "amd64":
            return "amd64", "" if variant == "v1" else variant
        case "aarch64" | "arm64":
            if variant in ("8", "v8", "v8.0"):
                variant = ""
            elif variant in ("9", "9.0", "v9.0"):
                variant = "v9"
            return "arm64", variant
        case "armhf":
            return "arm", "v7"
        case "armel":
            return "arm", "v6"
        case "arm":
            if variant in ("", "7"):
                variant = "v7"
            elif variant in ("5", "6", "8"):
                variant = "v" + variant
            return "arm", variant
    return arch, variant


def normalize(p: Platform) -> Platform:
    """The canonical form: lowercase, aliases resolved, default variants settled."""
    arch, variant = _normalize_arch(p.architecture, p.variant or "")
    return Platform(_normalize_os(p.os), arch, variant or None, p.os_version,
                    p.os_features, p.features)


def parse(text: str) -> Platform:
    """A platform from a specifier: "linux", "amd64", "linux/arm64/v8", "windows(10.0)/amd64".

    Like containerd's, the result keeps the form the user meant to write: "linux/arm" has no
    variant (v7 is implied), "linux/arm64/v8" keeps its v8; `normalize` settles both.
    """
    if not isinstance(text, str):
        raise InvalidArgument(f"invalid platform {text!r}: want a string")
    if "*" in text:
        raise InvalidArgument(f"invalid platform {text!r}: wildcards are not supported")
    parts = text.split("/", 3)
    m = _OS_PART.fullmatch(parts[0])
    if m is None:
        raise InvalidArgument(f"invalid platform {text!r}: {parts[0]!r} is not an os "
                              "(want letters, digits, '_' or '-', and an optional (version))")
    for part in parts[1:]:
        if not _PART.fullmatch(part):
            raise InvalidArgument(f"invalid platform {text!r}: {part!r} is not a valid "
                                  "component (want letters, digits, '_', '.' or '-')")
    os_name, os_version = _normalize_os(m.group(1)), m.group(2) or None
    match len(parts):
        case 1:
            return _parse_one(text, os_name, os_version)
        case 2:
            arch, variant = _normalize_arch(parts[1], "")
            if arch == "arm" and variant == "v7":
                variant = ""
        case 3:
            arch, variant = _normalize_arch(parts[1], parts[2])
            if arch == "arm64" and not variant:
                variant = "v8"
        case _:
            raise InvalidArgument(f"invalid platform {text!r}: want os/arch[/variant]")
    return Platform(os_name, arch, variant or None, os_version)


def _parse_one(text: str, os_name: str, os_version: str | None) -> Platform:
    """A lone word: a known os runs on the host's architecture, else it names the architecture."""
    here = host()
    if os_name in KNOWN_OS:
        variant = here.variant if here.architecture == "arm" and here.variant != "v7" else None
        return Platform(os_name, here.architecture, variant, os_version)
    arch, variant = _normalize_arch(text, "")
    if arch == "arm" and variant == "v7":
        variant = ""
    if arch not in KNOWN_ARCH:
        raise InvalidArgument(f"invalid platform {text!r}: unknown operating system or "
                              "architecture")
    return Platform(here.os, arch, variant or None)


def format(p: Platform) -> str:
    """`os/arch[/variant]`; os.version is left out, as the specifiers users type leave it."""
    if not p.os:
        return "unknown"
    return "/".join(part for part in (p.os, p.architecture, p.variant) if part)


def from_uname(sysname: str, machine: str) -> Platform:
    """The platform of a kernel as uname(2) reports it (`Linux`, `armv7l`...)."""
    machine = machine.lower()
    arm = re.fullmatch(r"armv(\d+)\w*", machine)
    if machine in ("aarch64", "arm64"):
        arch, variant = "arm64", "v8"  # what containerd reports for a 64-bit ARM host
    elif arm:
        arch, variant = "arm", f"v{arm.group(1)}"
    elif re.fullmatch(r"i[3-6]86", machine):
        arch, variant = "386", ""
    else:
        arch, variant = _normalize_arch(machine, "")
    return Platform(sysname.lower(), arch, variant or None)


@functools.cache
def host() -> Platform:
    """This machine's platform, as images for it are labelled (linux/amd64, linux/arm64/v8)."""
    u = os.uname()
    return from_uname(u.sysname, u.machine)


def _key(p: Platform) -> tuple[str, str, str | None]:
    n = normalize(p)
    return n.os, n.architecture, n.variant


@dataclass(frozen=True)
class Matcher:
    """Platforms a host accepts, best first. Build it with `matcher`, `only_strict` or
    `ordered`; compare with `match` (any of them) and `less` (which to prefer)."""

    accepted: tuple[Platform, ...]

    def rank(self, other: Platform) -> int | None:
        """Position of `other` in the preference order; None if it is not accepted."""
        key = _key(other)
        for i, p in enumerate(self.accepted):
            if _key(p) == key:
                return i
        return None

    def match(self, other: Platform) -> bool:
        return self.rank(other) is not None

    def less(self, a: Platform, b: Platform) -> bool:
        """True if `a` is preferred over `b`: a matches, and b not or only further down."""
        ra, rb = self.rank(a), self.rank(b)
        return ra is not None and (rb is None or ra < rb)


def _version(variant: str | None) -> int | None:
    text = (variant or "").removeprefix("v")
    return int(text) if text.isdigit() else None


def _arm64_variants(variant: str) -> list[str]:
    """Older arm64 variants a v8.x or v9.x core runs: v9.x-1..v9, then v8.(x+5)..v8."""
    major_text, _, minor_text = variant.removeprefix("v").partition(".")
    if not major_text.isdigit() or int(major_text) < 8:
        return []
    major = int(major_text)
    minor = int(minor_text) if len(variant) == 4 and minor_text.isdigit() else 0
    out: list[str] = []
    if major == 9:
        out += [f"v9.{m}" if m else "v9" for m in range(minor - 1, -1, -1)]
        # v9.0 branched from v8.5: v9.x also runs v8.(x+5), up to v8.9.
        major, minor = 8, min(minor + 5, 9)
        out.append(f"v8.{minor}")
    out += [f"v{major}.{m}" if m else f"v{major}" for m in range(minor - 1, -1, -1)]
    return out


def _compatible(p: Platform) -> list[Platform]:
    """`p` (normalized) and what it can also run, best first."""
    def like(arch: str, variant: str | None) -> Platform:
        return Platform(p.os, arch, variant, p.os_version, p.os_features)

    out = [p]
    version = _version(p.variant)
    match p.architecture:
        case "amd64":
            if version is not None and version > 1:
                out += [like("amd64", f"v{v}") for v in range(version - 1, 0, -1)]
            out.append(like("386", None))
        case "arm":
            if version is not None and version > 5:
                out += [like("arm", f"v{v}") for v in range(version - 1, 4, -1)]
        case "arm64":
            variant = p.variant or "v8"
            out += [like("arm64", v) for v in _arm64_variants(variant)]
            if variant.startswith(("v8.", "v9.")):
                variant = "v8"  # every arm64 runs 32-bit arm up to v8
            out += _compatible(like("arm", variant))
    return out


def matcher(p: Platform) -> Matcher:
    """What a host of platform `p` runs, best first (containerd's `Only`)."""
    return Matcher(tuple(normalize(q) for q in _compatible(normalize(p))))


def only_strict(p: Platform) -> Matcher:
    """Just `p`, in any of its spellings (containerd's `OnlyStrict`): amd64 refuses 386."""
    return Matcher((normalize(p),))


def ordered(*platforms: Platform) -> Matcher:
    """Any of `platforms`, preferred in the order given (containerd's `Ordered`)."""
    return Matcher(tuple(normalize(p) for p in platforms))


def default() -> Matcher:
    """What this host runs."""
    return matcher(host())


def _platform_of(candidate: Any) -> Platform | None:
    platform: Platform | None = candidate.platform
    return platform


def choose(candidates: Sequence[T], *, want: Platform | Matcher | None = None,
           key: Callable[[T], Platform | None] = _platform_of) -> T | None:
    """The candidate best for `want` (default: this host), e.g. a manifest of an index.

    Candidates without a platform are skipped when any has one: in a multi-platform index they
    are attestations and other artifacts, not images. When none has one, the index does not
    say, and the first is returned for the caller to check against its config. Among equally
    good candidates the first wins, as in containerd's stable sort.
    """
    m = want if isinstance(want, Matcher) else matcher(want) if want else default()
    best: T | None = None
    best_rank: int | None = None
    any_platform = False
    for candidate in candidates:
        p = key(candidate)
        if p is None:
            continue
        any_platform = True
        r = m.rank(p)
        if r is not None and (best_rank is None or r < best_rank):
            best, best_rank = candidate, r
    if not any_platform and candidates:
        return candidates[0]
    return best

