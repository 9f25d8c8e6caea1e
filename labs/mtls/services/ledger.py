"""ledger: books every charge payments makes. Owned by the lab, not by you.

POST /entries {"order": "o-17", "amount": 12, "card": "...1111"} answers 201 {"entry": n}.
Over TLS, only the holder of payments' certificate may book (anyone else gets 403). It still
takes plain HTTP while the move to TLS lasts, as a ledger must not stop booking.
"""

import os

from services.recorder import Call, run

ALLOWED_CALLERS = set(os.environ["ALLOWED_CALLERS"].split())
entries = 0


def book(call: Call) -> tuple[int, dict[str, object]]:
    global entries
    if call.method != "POST" or call.path != "/entries":
        return 404, {"error": "POST /entries"}
    if call.tls and call.peer not in ALLOWED_CALLERS:
        return 403, {"error": f"{call.peer} may not book entries"}
    entries += 1
    return 201, {"entry": entries}


if __name__ == "__main__":
    run(book, require_client_cert=True)
