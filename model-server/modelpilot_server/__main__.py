"""``modelpilot-server`` and ``python -m modelpilot_server``."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from .config import parse_config
from .serve import serve


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(sys.argv[1:] if argv is None else argv, os.environ)
    logging.basicConfig(
        level=config.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:  # optional: a faster event loop where available
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
