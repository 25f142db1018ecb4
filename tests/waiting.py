"""Waiting for a server a test (or a benchmark) started to answer HTTP."""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def wait_http(url: str, proc: subprocess.Popen | None = None, *, timeout: float = 20,
              logs: Callable[[], str] = lambda: "", what: str = "server") -> None:
    """Until `url` answers at all (an HTTP error status counts: it is up); RuntimeError with
    the logs if `proc` exits first or `timeout` passes. HTTPS certificates are not checked."""
    context = ssl._create_unverified_context() if url.startswith("https") else None
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1, context=context).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {logs()[-2000:]}") from None
            time.sleep(0.05)
