"""The raw baseline: a minimal FastAPI app doing one pymongo call per request, nothing else.

Same database, same collection layout, same JSON library as the FHIR server, so the ratio shows
what the FHIR layer (routing, validation, versioning, negotiation, headers) costs.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import serve_app


def build(uri: str, db_name: str) -> FastAPI:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    coll = client[db_name]["Patient"]
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b"ok")

    @app.get("/raw/Patient/{rid}")
    def read(rid: str) -> Response:
        doc = coll.find_one({"_id": rid}, {"resource": 1})
        if doc is None:
            return Response(status_code=404)
        return Response(orjson.dumps(doc["resource"]), media_type="application/json")

    @app.post("/raw/Patient")
    async def create(request: Request) -> Response:
        body = orjson.loads(await request.body())
        rid = str(uuid.uuid4())
        body["id"] = rid
        coll.insert_one({"_id": rid, "resource": body})
        return Response(orjson.dumps(body), status_code=201, media_type="application/json")

    return app


if __name__ == "__main__":
    serve_app(build)
