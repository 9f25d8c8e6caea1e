"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. The replica service (services/replica.py) calls these functions; a state is anything
JSON can carry, because replicas send it to each other.

Both are state-based CRDTs, so replicas that have received the same writes, in any order, any
number of times, hold the same state:
- likes: a PN-counter per post. Each replica counts its own likes and its own unlikes, in its
  own entries; merge takes the larger of each entry (entries only grow), and the count is
  sum(likes) - sum(unlikes).
- tags: an observed-remove set per post. Each add of a tag gets a unique id; a remove
  tombstones the ids of that tag the replica has seen. A tag is present while one of its ids is
  not tombstoned, so an add the remover had not seen survives (add wins). Merge is the union of
  ids and of tombstones.

Wrong: an add's id is the replica's name and the next number of a counter kept in memory. A
restarted replica counts from 1 again, so an add after a restart can get the id of an add
tombstoned before it, and is born removed.
Rejected by: test_7_a_tag_added_after_a_restart_is_a_new_add
"""

import itertools
from typing import Any

State = dict[str, Any]

_add_ids = itertools.count(1)  # this replica's adds, numbered: unique with its name


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {"likes": {}, "tags": {}}


def _counter(state: State, post: str) -> dict[str, dict[str, int]]:
    return state["likes"].setdefault(post, {"up": {}, "down": {}})


def _tag_set(state: State, post: str) -> dict[str, Any]:
    return state["tags"].setdefault(post, {"adds": {}, "removed": []})


def add_likes(state: State, replica: str, post: str, delta: int) -> State:
    """A like (delta 1) or an unlike (delta -1) of `post`, made on `replica`."""
    counter = _counter(state, post)
    side = counter["up"] if delta > 0 else counter["down"]
    side[replica] = side.get(replica, 0) + abs(delta)
    return state


def add_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` added to `post` on `replica`."""
    _tag_set(state, post)["adds"].setdefault(tag, []).append(f"{replica}:{next(_add_ids)}")
    return state


def remove_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` removed from `post` on `replica`: every add of it this replica has seen."""
    tag_set = _tag_set(state, post)
    seen = set(tag_set["adds"].get(tag, []))
    tag_set["removed"] = sorted(set(tag_set["removed"]) | seen)
    return state


def merge(state: State, other: State) -> State:
    """This replica's state after it received `other`, a peer's whole state."""
    for post, theirs in other["likes"].items():
        mine = _counter(state, post)
        for side in ("up", "down"):
            for replica, count in theirs[side].items():
                mine[side][replica] = max(mine[side].get(replica, 0), count)
    for post, theirs in other["tags"].items():
        mine = _tag_set(state, post)
        for tag, ids in theirs["adds"].items():
            mine["adds"][tag] = sorted(set(mine["adds"].get(tag, [])) | set(ids))
        mine["removed"] = sorted(set(mine["removed"]) | set(theirs["removed"]))
    return state


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    counter = state["likes"].get(post, {"up": {}, "down": {}})
    return sum(counter["up"].values()) - sum(counter["down"].values())


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    tag_set = state["tags"].get(post, {"adds": {}, "removed": []})
    removed = set(tag_set["removed"])
    return {tag for tag, ids in tag_set["adds"].items() if set(ids) - removed}
