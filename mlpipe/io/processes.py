"""Whether the process that left files behind (a staging dir, a RUNNING execution) still runs."""

from __future__ import annotations

import os
from typing import Any


def process_alive(pid: Any) -> bool:
    """True if a process with this pid exists on this host (also when it belongs to another user)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
