"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. The replica service (services/replica.py) calls these functions; a state is anything
JSON can carry, because replicas send it to each other.

Both are state-based CRDTs built the same way, each replica writing only its own entries:
- likes: a PN-counter per post. Each replica counts its own likes and its own unlikes; merge
  takes the larger of each entry, and the count is sum(likes) - sum(unlikes).
- tags: per tag, each replica counts its own adds, and a remove records, in the remover's own
  entry, how many adds it had made. Merge takes the larger of each entry. A tag is present
  while some replica has more adds than removes recorded, so an add made after (or while) a
  remove survives it (add wins).

Wrong: a remove only takes away the adds its own replica made. A tag added on replica-a and
removed on replica-b stays: b's remove records b's adds (none), and a's add is still counted.
Rejected by: test_4_every_tag_change_survives_the_heal
"""

from typing import Any

State = dict[str, Any]


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {"likes": {}, "tags": {}}


def _counter(state: State, post: str) -> dict[str, dict[str, int]]:
    return state["likes"].setdefault(post, {"up": {}, "down": {}})


def _tag(state: State, post: str, tag: str) -> dict[str, dict[str, int]]:
    return state["tags"].setdefault(post, {}).setdefault(tag, {"adds": {}, "removes": {}})


def add_likes(state: State, replica: str, post: str, delta: int) -> State:
    """A like (delta 1) or an unlike (delta -1) of `post`, made on `replica`."""
    counter = _counter(state, post)
    side = counter["up"] if delta > 0 else counter["down"]
    side[replica] = side.get(replica, 0) + abs(delta)
    return state


def add_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` added to `post` on `replica`."""
    adds = _tag(state, post, tag)["adds"]
    adds[replica] = adds.get(replica, 0) + 1
    return state


def remove_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` removed from `post` on `replica`: its adds so far are cancelled."""
    entry = _tag(state, post, tag)
    entry["removes"][replica] = entry["adds"].get(replica, 0)
    return state


def merge(state: State, other: State) -> State:
    """This replica's state after it received `other`, a peer's whole state."""
    for post, theirs in other["likes"].items():
        mine = _counter(state, post)
        for side in ("up", "down"):
            for replica, count in theirs[side].items():
                mine[side][replica] = max(mine[side].get(replica, 0), count)
    for post, tags_of_post in other["tags"].items():
        for tag, theirs in tags_of_post.items():
            mine = _tag(state, post, tag)
            for part in ("adds", "removes"):
                for replica, count in theirs[part].items():
                    mine[part][replica] = max(mine[part].get(replica, 0), count)
    return state


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    counter = state["likes"].get(post, {"up": {}, "down": {}})
    return sum(counter["up"].values()) - sum(counter["down"].values())


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    return {
        tag
        for tag, entry in state["tags"].get(post, {}).items()
        if any(n > entry["removes"].get(replica, 0) for replica, n in entry["adds"].items())
    }
