"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. A state is anything JSON can carry, because replicas send it to each other.

- likes: per post, each replica's own count (its likes minus its unlikes) in its own entry,
  which only that replica changes. So a state from a replica is the truth about its own entry
  and merge takes it as sent, even when it went down (an unlike); another replica's entry,
  passed on second-hand, is taken when it is larger. The count is the sum of the entries.
- tags: an observed-remove set per post: each add of a tag gets a unique id; a remove
  tombstones the ids of that tag the replica has seen; merge is the union of ids and of
  tombstones.

Wrong: a state that arrives late (delayed, reordered or delivered again) sets the sender's
entry back to an older count: merge is not commutative nor idempotent over old states.
Rejected by: test_6_a_state_merged_again_or_late_changes_nothing
"""

import uuid
from typing import Any

State = dict[str, Any]


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {"owner": None, "likes": {}, "tags": {}}


def _tag_set(state: State, post: str) -> dict[str, Any]:
    return state["tags"].setdefault(post, {"adds": {}, "removed": []})


def add_likes(state: State, replica: str, post: str, delta: int) -> State:
    """A like (delta 1) or an unlike (delta -1) of `post`, made on `replica`."""
    state["owner"] = replica
    counts = state["likes"].setdefault(post, {})
    counts[replica] = counts.get(replica, 0) + delta
    return state


def add_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` added to `post` on `replica`."""
    state["owner"] = replica
    _tag_set(state, post)["adds"].setdefault(tag, []).append(f"{replica}:{uuid.uuid4().hex}")
    return state


def remove_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` removed from `post` on `replica`: every add of it this replica has seen."""
    state["owner"] = replica
    tag_set = _tag_set(state, post)
    seen = set(tag_set["adds"].get(tag, []))
    tag_set["removed"] = sorted(set(tag_set["removed"]) | seen)
    return state


def merge(state: State, other: State) -> State:
    """This replica's state after it received `other`, a peer's whole state."""
    sender = other["owner"]
    for post, theirs in other["likes"].items():
        mine = state["likes"].setdefault(post, {})
        for replica, count in theirs.items():
            if replica == sender:
                mine[replica] = count
            elif replica != state["owner"]:
                mine[replica] = max(mine.get(replica, count), count)
    for post, theirs in other["tags"].items():
        mine = _tag_set(state, post)
        for tag, ids in theirs["adds"].items():
            mine["adds"][tag] = sorted(set(mine["adds"].get(tag, [])) | set(ids))
        mine["removed"] = sorted(set(mine["removed"]) | set(theirs["removed"]))
    return state


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    return sum(state["likes"].get(post, {}).values())


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    tag_set = state["tags"].get(post, {"adds": {}, "removed": []})
    removed = set(tag_set["removed"])
    return {tag for tag, ids in tag_set["adds"].items() if set(ids) - removed}
