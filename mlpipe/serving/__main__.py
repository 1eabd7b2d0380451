"""``python -m mlpipe.serving``: ``mlpipe serve`` without the main ``mlpipe`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from mlpipe.errors import MlpipeError
from mlpipe.serving.cli import add_serve_arguments, run_serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlpipe.serving",
        description="Serve SavedModels over TF Serving's REST and gRPC APIs (same flags as tensorflow_model_server).",
    )
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_serve(args)
    except MlpipeError as error:
        print(f"mlpipe serve: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
