"""Run the taxi pipeline in-process: ``python pipelines/run_local.py`` or ``mlpipe run pipelines/taxi.py``."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from taxi import create_pipeline  # noqa: E402

from mlpipe import LocalDagRunner  # noqa: E402
from mlpipe.process_exit import freeze_heap_at_exit  # noqa: E402

if __name__ == "__main__":
    freeze_heap_at_exit()  # this process ends with the run: skip collecting its heap at exit
    LocalDagRunner().run(create_pipeline())
