"""``freeze_heap_at_exit``: the heap is frozen when the process exits, once, after other exit callbacks."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit, gc
# registered first, so it runs last (atexit is LIFO): it sees what the interpreter's final
# collections will see
atexit.register(lambda: print("frozen objects at exit:", gc.get_freeze_count()))
from mlpipe.process_exit import freeze_heap_at_exit
freeze_heap_at_exit()
freeze_heap_at_exit()
print("exit callbacks:", atexit._ncallbacks())
print("frozen objects before exit:", gc.get_freeze_count())
"""


def test_heap_is_frozen_at_exit_and_only_then():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    lines = dict(line.split(": ") for line in out.strip().splitlines())
    assert lines["exit callbacks"] == "2"  # the probe and one freeze, though asked twice
    assert lines["frozen objects before exit"] == "0"  # the process may still collect while it runs
    assert int(lines["frozen objects at exit"]) > 1000  # everything alive at exit: modules, classes
