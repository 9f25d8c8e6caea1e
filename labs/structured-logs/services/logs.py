"""How the gateway and orders set up their logging, in one place so that both look alike.

Each service calls `log = setup("gateway")` once at start-up and logs with `log.info(...)`.
"""

import logging
import sys


def setup(service: str) -> logging.Logger:
    """The service's logger: lines on stdout, where the platform collects them."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        stream=sys.stdout,
    )
    return logging.getLogger(service)
