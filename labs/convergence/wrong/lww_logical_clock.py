"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. A state is anything JSON can carry, because replicas send it to each other.

Wall clocks drift apart between machines, so each post's value carries a logical clock (a
Lamport clock) instead: every change on a replica moves the post's clock past the highest one
that replica has seen. When two copies of a post differ, merge keeps the one with the higher
clock (and, on a tie, the one from the replica with the larger name).

Wrong: still last writer wins on the whole value, only with a logical clock: when both sides of
a partition changed a post, one side's likes and tag changes are thrown away.
Rejected by: test_3_no_acknowledged_like_or_unlike_is_lost,
    test_4_every_tag_change_survives_the_heal,
    test_5_a_concurrent_add_wins_over_a_remove
"""

from typing import Any

State = dict[str, Any]


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {}


def _value(state: State, post: str) -> dict[str, Any]:
    return state.get(post, {"likes": 0, "tags": [], "clock": 0, "by": ""})


def _write(state: State, replica: str, post: str, likes: int, tags: set[str]) -> State:
    clock = _value(state, post)["clock"] + 1
    state[post] = {"likes": likes, "tags": sorted(tags), "clock": clock, "by": replica}
    return state


def add_likes(state: State, replica: str, post: str, delta: int) -> State:
    """A like (delta 1) or an unlike (delta -1) of `post`, made on `replica`."""
    value = _value(state, post)
    return _write(state, replica, post, value["likes"] + delta, set(value["tags"]))


def add_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` added to `post` on `replica`."""
    value = _value(state, post)
    return _write(state, replica, post, value["likes"], set(value["tags"]) | {tag})


def remove_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` removed from `post` on `replica`."""
    value = _value(state, post)
    return _write(state, replica, post, value["likes"], set(value["tags"]) - {tag})


def merge(state: State, other: State) -> State:
    """This replica's state after it received `other`, a peer's whole state."""
    for post, theirs in other.items():
        mine = state.get(post)
        if mine is None or (theirs["clock"], theirs["by"]) > (mine["clock"], mine["by"]):
            state[post] = theirs
    return state


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    return int(_value(state, post)["likes"])


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    return set(_value(state, post)["tags"])
