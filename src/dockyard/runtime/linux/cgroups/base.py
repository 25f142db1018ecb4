"""What every cgroup manager does: the interface the runtime calls (v1.Manager, v2.Manager).

A manager is created by manager_for() for a new container or by load(paths) in a later
process; it holds nothing but where the cgroup is, so both are the same manager.
"""

from __future__ import annotations


class Manager:
    """The container's cgroup: make it, put processes in, limit, pause, count, remove."""

    __slots__ = ()
    version = ""

    @property
    def paths(self) -> dict[str, str]:
        """controller -> absolute directory (v2: {"": dir}); saved in state.json."""
        raise NotImplementedError

    def create(self) -> None:
        """Make the directories (nothing is limited yet)."""
        raise NotImplementedError

    def apply(self, pid: int) -> None:
        """Move pid into the cgroup (every hierarchy on v1)."""
        raise NotImplementedError

    def join_files(self) -> list[str]:
        """Files a single-threaded process writes "0" to, to move itself in.

        On v1 these are the `tasks` files: the kernel moves the calling thread without the
        global cgroup_threadgroup_rwsem, so the move does not wait for an RCU grace period
        (8-15 ms here) the way writing a pid to cgroup.procs does. Empty where there is no
        such way (v2): the caller then uses apply().
        """
        return []

    def set(self, res: dict) -> None:
        """Apply OCI linux.resources (devices included; runc's defaults are appended)."""
        raise NotImplementedError

    def freeze(self) -> None:
        """Pause every process; returns when they are all frozen."""
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every pid in the cgroup and its sub-cgroups."""
        raise NotImplementedError

    def kill_all(self, sig: int) -> None:
        raise NotImplementedError

    def stats(self) -> dict:
        """The "data" of `runc events --stats`."""
        raise NotImplementedError

    def oom_kill_count(self) -> int:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def destroy(self) -> None:
        """Remove the directories, sub-cgroups first; missing ones are fine."""
        raise NotImplementedError
