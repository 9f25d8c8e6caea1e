"""payments: takes the order's money (POST /charges/{saga} {"amount": cents}) and gives it back
(POST /refunds/{saga}). Owned by the lab, not by you; see services/participant.py."""

from services.participant import serve

if __name__ == "__main__":
    serve("charges", "refunds", refuse=lambda body: None, refused_status=402)
