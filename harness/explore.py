"""Exploring a running lab by hand (`chaoslab up`): the commands of Toxiproxy's own tools,
its CLI and the toxiproxy-python client, pointed at this run's Toxiproxy API."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

from harness.tools import find_toxiproxy_cli


def by_hand(api: str, proxy: str) -> str:
    """How to add and remove a latency toxic on `proxy` with each tool, ready to paste."""
    parsed = urlsplit(api)
    cli = find_toxiproxy_cli()
    cli_cmd = f"{cli or 'toxiproxy-cli'} -h {api}"
    client = (
        "from toxiproxy import Toxiproxy; t = Toxiproxy(); "
        f"t.update_api_consumer('{parsed.hostname}', {parsed.port}); "
        f"p = t.get_proxy('{proxy}'); "
    )
    add = "p.add_toxic(type='latency', attributes={'latency': 1000})"
    remove = "p.destroy_toxic('latency_downstream')"
    lines = [
        "Break it by hand with Toxiproxy's tools (each link is a proxy; 'list' shows them):",
        f"  {cli_cmd} list",
        f"  {cli_cmd} toxic add -t latency -a latency=1000 {proxy}",
        f"  {cli_cmd} toxic remove -n latency_downstream {proxy}",
        f'  {sys.executable} -c "{client}{add}"',
        f'  {sys.executable} -c "{client}{remove}"',
    ]
    if cli is None:
        lines.append("  (toxiproxy-cli is built by 'make setup' when Go is installed)")
    return "\n".join(lines)
