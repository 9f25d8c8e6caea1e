"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. The replica service (services/replica.py) calls these functions; a state is anything
JSON can carry, because replicas send it to each other.

Each post's value is stamped with the wall-clock time of its last change. When two replicas
hold different values for a post, the newer one is kept: last writer wins.
"""

import time
from typing import Any

State = dict[str, Any]


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {}


def _value(state: State, post: str) -> dict[str, Any]:
    return state.get(post, {"likes": 0, "tags": [], "at": 0.0, "by": ""})


def _write(state: State, replica: str, post: str, likes: int, tags: set[str]) -> State:
    state[post] = {"likes": likes, "tags": sorted(tags), "at": time.time(), "by": replica}
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
    merged = dict(state)
    for post, theirs in other.items():
        mine = merged.get(post)
        if mine is None or (theirs["at"], theirs["by"]) > (mine["at"], mine["by"]):
            merged[post] = theirs
    return merged


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    return int(_value(state, post)["likes"])


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    return set(_value(state, post)["tags"])
