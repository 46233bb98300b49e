"""The HTTP health probe a deployment's configuration declares (vatools/health.py is the
appliance's own, inside it; this one looks from outside, as a client would).

Healthy: GET http://127.0.0.1:PORT/PATH answers the expected status with the expected
text in the body, before the deadline. A container that stopped is unhealthy at once.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass

from vatools.container.config import Health

ATTEMPT_TIMEOUT = 5.0
PAUSE = 0.5


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    detail: str  # what the last attempt saw
    seconds: float

    def __str__(self) -> str:
        return f"healthy after {self.seconds:.1f} s" if self.healthy else f"unhealthy: {self.detail}"


def probe_once(address: str, port: int, health: Health, timeout: float = ATTEMPT_TIMEOUT) -> tuple[bool, str]:
    """One GET: (as expected?, what was seen)."""
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", health.path, headers={"User-Agent": "vatools-container-probe"})
        response = connection.getresponse()
        body = response.read(1 << 20).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        return False, f"GET {health.path} on port {port}: {error or type(error).__name__}"
    finally:
        connection.close()
    if response.status != health.status:
        return False, f"GET {health.path} answered {response.status}, expected {health.status}"
    if health.text and health.text not in body:
        return False, f"GET {health.path} answered {response.status} without the text {health.text!r}"
    return True, f"GET {health.path} answered {response.status}"


def wait_healthy(address: str, port: int, health: Health, alive: Callable[[], bool]) -> Verdict:
    """Probe until healthy, the deadline passes or the container stops."""
    started = time.monotonic()
    detail = "not probed"
    while True:
        healthy, detail = probe_once(address, port, health)
        elapsed = time.monotonic() - started
        if healthy:
            return Verdict(True, detail, elapsed)
        if not alive():
            return Verdict(False, f"the container stopped ({detail})", elapsed)
        if elapsed >= health.deadline:
            return Verdict(False, f"{detail}; gave up after {health.deadline:.0f} s", elapsed)
        time.sleep(PAUSE)
