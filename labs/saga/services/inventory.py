"""inventory: reserves the order's stock (POST /reservations/{saga} {"sku", "qty"}) and releases
it (POST /releases/{saga}). Refuses (409) a SKU it has none of: "sold-out". Owned by the lab,
not by you; see services/participant.py."""

from services.participant import serve

if __name__ == "__main__":
    serve(
        "reservations",
        "releases",
        refuse=lambda body: "out of stock" if body.get("sku") == "sold-out" else None,
        refused_status=409,
    )
