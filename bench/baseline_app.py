"""The raw baseline: a minimal FastAPI app doing one pymongo call per request, nothing else.

Same database, same collection layout, same JSON library as the FHIR server, so the ratio shows
what the FHIR layer (routing, validation, versioning, negotiation, headers, auth) costs.

- ``GET /raw/Patient/{id}``: one ``find_one`` (the read floor);
- ``POST /raw/Patient``: one ``insert_one`` into the same, indexed collection (the create floor);
- ``POST /raw/queries/{name}``: register the filters (MongoDB Extended JSON) the FHIR server
  sent for a search shape (``bench/scale.py`` records them), then
  ``GET /raw/search/{name}/{i}``: the first page of the ``i``-th one (its ``find``s in order,
  each with its sort and limit: a windowed search sends several);
- ``POST /raw/bundle``: a transaction Bundle's resources as plain ``{_id, resource}`` documents,
  one ``insert_many`` per type in one transaction (the ingest floor: no validation, no index
  values, no history, no reference checks).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
from bson import json_util
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pymongo import MongoClient
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import serve_app


def build(uri: str, db_name: str) -> FastAPI:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    db = client[db_name]
    coll = db["Patient"]
    app = FastAPI()
    queries: dict[str, list[dict[str, Any]]] = {}

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

    @app.post("/raw/queries/{name}")
    async def register(name: str, request: Request) -> Response:
        queries[name] = json_util.loads(await request.body())
        return Response(status_code=204)

    @app.get("/raw/search/{name}/{i}")
    def search(name: str, i: int, count: int = 10) -> Response:
        shapes = queries[name]
        q = shapes[i % len(shapes)]
        entries: list[dict[str, Any]] = []
        for step in q["steps"]:
            cursor = db[q["collection"]].find(step["filter"], {"resource": 1})
            if step.get("sort"):
                cursor = cursor.sort(list(step["sort"].items()))
            if step.get("limit"):
                cursor = cursor.limit(step["limit"])
            entries += [{"resource": d["resource"]} for d in cursor]
        entries = entries[:count]
        bundle = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        return Response(orjson.dumps(bundle, default=str), media_type="application/json")

    @app.post("/raw/bundle")
    async def bundle(request: Request) -> Response:
        body = orjson.loads(await request.body())
        by_type: dict[str, list[dict[str, Any]]] = {}
        for entry in body.get("entry", []):
            resource = entry["resource"]
            resource["id"] = str(uuid.uuid4())
            by_type.setdefault(f"raw_{resource['resourceType']}", []).append(
                {"_id": resource["id"], "resource": resource}
            )

        def work(session: Any) -> None:
            for name, docs in by_type.items():
                db[name].insert_many(docs, session=session)

        with client.start_session() as session:
            session.with_transaction(
                work, read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
            )
        out = {"resourceType": "Bundle", "type": "transaction-response"}
        return Response(orjson.dumps(out), media_type="application/json")

    return app


if __name__ == "__main__":
    serve_app(build)
