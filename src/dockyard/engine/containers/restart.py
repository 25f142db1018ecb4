"""Restart policies, as dockerd's restartmanager applies them: whether an exit restarts the
container, and after how long (100 ms, doubled at each restart, reset once the container ran
10 s, at most a minute)."""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def should_restart(policy: dict, exit_code: int, restart_count: int,
                   manually_stopped: bool) -> bool:
    name = policy.get("Name") or "no"
    if manually_stopped or name == "no":
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        most = policy.get("MaximumRetryCount") or 0
        return exit_code != 0 and (most == 0 or restart_count < most)
    return False


def restarts_with_daemon(policy: dict, manually_stopped: bool) -> bool:
    """Started again when the engine starts: always, and unless-stopped unless stopped."""
    name = policy.get("Name") or "no"
    return name == "always" or (name == "unless-stopped" and not manually_stopped)


@dataclass
class Backoff:
    delay: float = 0.0

    def next(self, ran_for: float) -> float:
        """The wait before the next restart of a container that ran `ran_for` seconds."""
        if ran_for >= RESET_AFTER or self.delay == 0.0:
            self.delay = INITIAL_DELAY
        else:
            self.delay = min(self.delay * 2, MAX_DELAY)
        return self.delay
