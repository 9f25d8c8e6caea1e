"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. A state is anything JSON can carry, because replicas send it to each other.

- likes: a PN-counter per post: each replica counts its own likes and its own unlikes in its
  own entries; merge takes the larger of each entry; the count is likes - unlikes.
- tags: a last-writer-wins element set per post: for each tag, the time it was last added and
  the time it was last removed; merge keeps the later of each; a tag is there if its last add
  is later than its last remove. A tag can be removed and added again, and a remove travels.

Wrong: an add and a remove made concurrently, on two sides of a partition, are decided by the
wall clock, so a remove that happens to be later wins over an add it never saw.
Rejected by: test_5_a_concurrent_add_wins_over_a_remove
"""

import time
from typing import Any

State = dict[str, Any]


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {"likes": {}, "tags": {}}


def _counter(state: State, post: str) -> dict[str, dict[str, int]]:
    return state["likes"].setdefault(post, {"up": {}, "down": {}})


def _stamps(state: State, post: str, tag: str) -> dict[str, float]:
    return state["tags"].setdefault(post, {}).setdefault(tag, {"added": 0.0, "removed": 0.0})


def add_likes(state: State, replica: str, post: str, delta: int) -> State:
    """A like (delta 1) or an unlike (delta -1) of `post`, made on `replica`."""
    counter = _counter(state, post)
    side = counter["up"] if delta > 0 else counter["down"]
    side[replica] = side.get(replica, 0) + abs(delta)
    return state


def add_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` added to `post` on `replica`."""
    _stamps(state, post, tag)["added"] = time.time()
    return state


def remove_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` removed from `post` on `replica`."""
    _stamps(state, post, tag)["removed"] = time.time()
    return state


def merge(state: State, other: State) -> State:
    """This replica's state after it received `other`, a peer's whole state."""
    for post, theirs in other["likes"].items():
        mine = _counter(state, post)
        for side in ("up", "down"):
            for replica, count in theirs[side].items():
                mine[side][replica] = max(mine[side].get(replica, 0), count)
    for post, tags_ in other["tags"].items():
        for tag, stamps in tags_.items():
            mine_ = _stamps(state, post, tag)
            mine_["added"] = max(mine_["added"], stamps["added"])
            mine_["removed"] = max(mine_["removed"], stamps["removed"])
    return state


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    counter = state["likes"].get(post, {"up": {}, "down": {}})
    return sum(counter["up"].values()) - sum(counter["down"].values())


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    stamps = state["tags"].get(post, {})
    return {tag for tag, s in stamps.items() if s["added"] > s["removed"]}
