"""``python -m edge_agent [--env-file FILE]``: the agent without the ``flota`` CLI.

What a vehicle image runs: the same agent as ``flota agent run``, minus typer and the CLI's
imports (nothing the agent needs; ``FILE`` holds ``FLOTA_AGENT_*=value`` lines or is a .toml).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent", description=__doc__)
    parser.add_argument(
        "--env-file", type=Path, help="FLOTA_AGENT_*=value lines, or a .toml file of fields"
    )
    parser.add_argument("--log-level", default=os.environ.get("FLOTA_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from edge_agent.settings import SettingsError, load_settings

    try:
        settings = load_settings(args.env_file)
    except SettingsError as err:
        print(f"edge_agent: bad settings:\n{err}", file=sys.stderr)
        return 2
    from edge_agent.agent import Agent
    from edge_agent.can_signals import CanConfigError

    try:
        agent = Agent(settings)
    except CanConfigError as err:
        print(f"edge_agent: bad settings:\ncan_dbc/can_signals: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
