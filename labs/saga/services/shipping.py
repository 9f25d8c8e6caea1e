"""shipping: books the order's shipment (POST /shipments/{saga} {"address"}), the saga's last
step. Refuses (422) an address it cannot deliver to: "nowhere". Owned by the lab, not by you;
see services/participant.py."""

from services.participant import serve

if __name__ == "__main__":
    serve(
        "shipments",
        None,
        refuse=lambda body: "undeliverable" if body.get("address") == "nowhere" else None,
        refused_status=422,
    )
