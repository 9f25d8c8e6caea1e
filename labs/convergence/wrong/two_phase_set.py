"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. A state is anything JSON can carry, because replicas send it to each other.

- likes: a PN-counter per post: each replica counts its own likes and its own unlikes in its
  own entries; merge takes the larger of each entry; the count is likes - unlikes.
- tags: a two-phase set per post: the tags ever added and the tags ever removed, both only
  growing; merge is the union of each; a tag is there if it was added and not removed.

Wrong: a 2P-set: once removed, a tag can never be added again, and a remove beats an add made
concurrently on the other side (remove wins, not add).
Rejected by: test_4_every_tag_change_survives_the_heal,
    test_5_a_concurrent_add_wins_over_a_remove,
    test_7_a_tag_added_after_a_restart_is_a_new_add
"""

from typing import Any

State = dict[str, Any]


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {"likes": {}, "tags": {}}


def _counter(state: State, post: str) -> dict[str, dict[str, int]]:
    return state["likes"].setdefault(post, {"up": {}, "down": {}})


def _tag_set(state: State, post: str) -> dict[str, Any]:
    return state["tags"].setdefault(post, {"added": [], "removed": []})


def add_likes(state: State, replica: str, post: str, delta: int) -> State:
    """A like (delta 1) or an unlike (delta -1) of `post`, made on `replica`."""
    counter = _counter(state, post)
    side = counter["up"] if delta > 0 else counter["down"]
    side[replica] = side.get(replica, 0) + abs(delta)
    return state


def add_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` added to `post` on `replica`."""
    tag_set = _tag_set(state, post)
    tag_set["added"] = sorted(set(tag_set["added"]) | {tag})
    return state


def remove_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` removed from `post` on `replica`."""
    tag_set = _tag_set(state, post)
    tag_set["removed"] = sorted(set(tag_set["removed"]) | {tag})
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
        mine["added"] = sorted(set(mine["added"]) | set(theirs["added"]))
        mine["removed"] = sorted(set(mine["removed"]) | set(theirs["removed"]))
    return state


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    counter = state["likes"].get(post, {"up": {}, "down": {}})
    return sum(counter["up"].values()) - sum(counter["down"].values())


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    tag_set = state["tags"].get(post, {"added": [], "removed": []})
    return set(tag_set["added"]) - set(tag_set["removed"])
