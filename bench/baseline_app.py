"""The raw baseline: a minimal FastAPI app doing one pymongo call per request, nothing else.

Same database, same collection layout, same JSON library as the FHIR server, so the ratio shows
what the FHIR layer (routing, validation, versioning, negotiation, headers) costs.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pymongo import MongoClient


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
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    a = parser.parse_args()
    uvicorn.run(build(a.uri, a.db), host="127.0.0.1", port=a.port, log_level="warning")
