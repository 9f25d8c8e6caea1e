"""accounts: customers' accounts. Two replicas run behind the load balancer, on one database.

GET /accounts/{id}             200 {"id", "name", "balance"}, or 404
PUT /accounts/{id} {"name"}    creates the account, or renames it: 200 {"id", "name"}

RELEASE (in the environment) says which release of this code runs: a deploy restarts the
replicas one at a time with the next release.
"""

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services import schema

RELEASE = int(os.environ["RELEASE"])
db = schema.connect(RELEASE)
NAME = schema.name_column(RELEASE)


async def read(request: Request) -> JSONResponse:
    account = request.path_params["account"]
    row = db.execute(
        f"SELECT id, {NAME}, balance FROM accounts WHERE id = %s", (account,)
    ).fetchone()
    if row is None:
        return JSONResponse({"error": f"no account {account}"}, status_code=404)
    return JSONResponse({"id": row[0], "name": row[1], "balance": row[2]})


async def write(request: Request) -> JSONResponse:
    account = request.path_params["account"]
    name = (await request.json())["name"]
    db.execute(
        f"INSERT INTO accounts (id, {NAME}) VALUES (%s, %s) "
        f"ON CONFLICT (id) DO UPDATE SET {NAME} = excluded.{NAME}",
        (account, name),
    )
    return JSONResponse({"id": account, "name": name})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "release": RELEASE})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/accounts/{account}", read, methods=["GET"]),
        Route("/accounts/{account}", write, methods=["PUT"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
