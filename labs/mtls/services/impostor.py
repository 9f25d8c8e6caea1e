"""impostor: a server that is not payments, answering where payments should. Owned by the lab.

The harness points checkout's link to payments at it for a moment. Its certificate is a real
one from the run's CA, but for the name "impostor", not "payments"; then one for "payments"
from a CA nobody trusts. A checkout that checks whom it talks to sends it nothing; one that
does not hands it the card numbers, which it writes down (STATE_DIR/calls.jsonl).
"""

from services.recorder import Call, run


def pretend(call: Call) -> tuple[int, dict[str, object]]:
    order = call.body.get("order") if isinstance(call.body, dict) else None
    return 201, {"charge": 1, "order": order}


if __name__ == "__main__":
    run(pretend, require_client_cert=False)
