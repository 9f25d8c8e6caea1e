"""One lab's proofs on one worker: labs run in parallel, never two copies of one lab's load.

pytest-xdist's own `--dist loadgroup` groups by an `xdist_group` mark that it writes into the
node id, which pytest 9.2 no longer lets it do: every proof went to whichever worker was free,
and three copies of one lab's traffic ran at once. This scheduler reads the lab from the proof's
own id (`[<lab>:<variant>]`) instead, so it holds whatever pytest does with node ids.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from xdist.scheduler import LoadScopeScheduling

PROOF_ID = re.compile(r"::test_variant_gets_its_verdict\w*\[(?P<lab>[a-z0-9-]+):")


def lab_of(nodeid: str, labs: Collection[str]) -> str | None:
    """The lab a proof's node id names, or None for any other test."""
    found = PROOF_ID.search(nodeid)
    if found is None or found["lab"] not in labs:
        return None
    return found["lab"]


class LabScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, with a lab's proofs as one scope (other tests alone)."""

    labs: Collection[str] = ()

    def _split_scope(self, nodeid: str) -> str:
        lab = lab_of(nodeid, self.labs)
        return f"lab:{lab}" if lab is not None else nodeid
