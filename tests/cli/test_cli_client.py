"""The client commands as a user runs them against a real server: import (four formats, resumable,
throttled), export, ls, query, and the errors a new user meets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner, Result

from api.cli import cli
from api.cli.remote import Remote
from tests.backends import Backend, make_backend
from tests.cli.test_cli import free_port
from tests.server import ALICE, RunningServer, running_server

DIM = 8


def run(
    srv: RunningServer, *args: str, key: str = ALICE.access_key_id, secret: str = ALICE.secret_access_key
) -> Result:
    env = {"VECLEDGER_ENDPOINT": srv.url, "VECLEDGER_ACCESS_KEY_ID": key, "VECLEDGER_SECRET_ACCESS_KEY": secret}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def data(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    vectors = np.random.default_rng(seed).random((n, DIM), dtype=np.float32)
    keys = [f"k{i:05d}" for i in range(n)]
    metas = [{"genre": "abc"[i % 3], "n": i} for i in range(n)]
    return keys, vectors, metas


def write_parquet(path: Path, n: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    keys, vectors, metas = data(n)
    table = pa.table(
        {
            "key": keys,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
            "genre": [m["genre"] for m in metas],
            "n": [m["n"] for m in metas],
        }
    )
    pq.write_table(table, path, row_group_size=300)
    return keys, vectors, metas


def stored(srv: RunningServer, bucket: str, index: str) -> dict[str, tuple[list[float], dict[str, Any]]]:
    """Every vector of an index, read back through boto3."""
    client, out, token = srv.s3vectors(), {}, None
    while True:
        page = client.list_vectors(
            vectorBucketName=bucket,
            indexName=index,
            returnData=True,
            returnMetadata=True,
            **({"nextToken": token} if token else {}),
        )
        for v in page["vectors"]:
            out[v["key"]] = (v["data"]["float32"], v.get("metadata") or {})
        token = page.get("nextToken")
        if not token:
            return out


def check(srv: RunningServer, index: str, keys: list[str], vectors: np.ndarray, metas: list[dict[str, Any]]) -> None:
    got = stored(srv, "cli", index)
    assert sorted(got) == sorted(keys)
    for i in (0, len(keys) // 2, len(keys) - 1):
        vec, meta = got[keys[i]]
        np.testing.assert_array_equal(np.asarray(vec, np.float32), vectors[i])
        assert meta == metas[i]


def test_import_each_format_then_export(backend: Backend, tmp_path: Path) -> None:
    with running_server(backend) as srv:
        keys, vectors, metas = write_parquet(tmp_path / "v.parquet", 1100)
        out = ok(run(srv, "import", "-b", "cli", "-i", "parq", "--create-index", str(tmp_path / "v.parquet")))
        assert "created bucket cli" in out and f"created index cli/parq ({DIM} dimensions, cosine)" in out
        assert "imported 1100 vectors into cli/parq" in out
        check(srv, "parq", keys, vectors, metas)
        assert not (tmp_path / "v.parquet.vecledger-progress").exists()

        keys, vectors, metas = data(120, seed=1)
        np.save(tmp_path / "v.npy", vectors)
        (tmp_path / "keys.txt").write_text("".join(f"{k}\n" for k in keys))
        (tmp_path / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas))
        args = ["--keys", str(tmp_path / "keys.txt"), "--metadata", str(tmp_path / "meta.jsonl")]
        ok(
            run(
                srv,
                "import",
                "-b",
                "cli",
                "-i",
                "npy",
                "--create-index",
                "--metric",
                "euclidean",
                *args,
                str(tmp_path / "v.npy"),
            )
        )
        check(srv, "npy", keys, vectors, metas)
        assert (
            srv.s3vectors().get_index(vectorBucketName="cli", indexName="npy")["index"]["distanceMetric"] == "euclidean"
        )
        ok(run(srv, "import", "-b", "cli", "-i", "npy-rows", "--create-index", str(tmp_path / "v.npy")))
        assert sorted(stored(srv, "cli", "npy-rows")) == sorted(str(i) for i in range(120))

        lines = [
            {"key": k, "vector": v.tolist(), "metadata": {"genre": m["genre"]}, "n": m["n"]}
            for k, v, m in zip(keys, vectors, metas, strict=True)
        ]
        (tmp_path / "v.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        ok(run(srv, "import", "-b", "cli", "-i", "jsonl", "--create-index", str(tmp_path / "v.jsonl")))
        check(srv, "jsonl", keys, vectors, metas)

        header = "key,genre,n," + ",".join(f"v{j}" for j in range(DIM))
        rows = [
            ",".join([k, m["genre"], str(m["n"]), *map(repr, v.tolist())])
            for k, v, m in zip(keys, vectors, metas, strict=True)
        ]
        (tmp_path / "v.csv").write_text("\n".join([header, *rows]) + "\n")
        ok(
            run(
                srv,
                "import",
                "-b",
                "cli",
                "-i",
                "csv",
                "--create-index",
                "--dimension",
                str(DIM),
                str(tmp_path / "v.csv"),
            )
        )
        check(srv, "csv", keys, vectors, metas)
        as_json = [f'{k},"{json.dumps(v.tolist())}",{m["genre"]}' for k, v, m in zip(keys, vectors, metas, strict=True)]
        (tmp_path / "w.csv").write_text("\n".join(["key,vector,genre", *as_json]) + "\n")
        ok(run(srv, "import", "-b", "cli", "-i", "csv", str(tmp_path / "w.csv")))  # an upsert over the same keys
        assert stored(srv, "cli", "csv")[keys[5]][1] == {"genre": metas[5]["genre"]}

        out = ok(run(srv, "export", "-b", "cli", "-i", "parq", "--segments", "3", str(tmp_path / "out.parquet")))
        assert "exported 1100 vectors" in out
        source, back = pq.read_table(tmp_path / "v.parquet"), pq.read_table(tmp_path / "out.parquet")
        assert back.schema.field("vector").type == pa.list_(pa.float32(), DIM)
        assert back.sort_by("key").select(["key", "vector", "genre", "n"]).equals(source.sort_by("key"))
        ok(run(srv, "import", "-b", "cli", "-i", "again", "--create-index", str(tmp_path / "out.parquet")))
        assert stored(srv, "cli", "again") == stored(srv, "cli", "parq")


def test_import_resumes_after_an_interruption(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "v.parquet"
    keys, vectors, metas = write_parquet(src, 1300)
    progress = tmp_path / "v.parquet.vecledger-progress"
    with running_server(backend) as srv:
        r = run(srv, "import", "-b", "cli", "-i", "docs", "--create-index", "--stop-after", "500", str(src))
        assert r.exit_code == 1 and "stopped after 500 rows" in r.output and "run the command again" in r.output
        assert json.loads(progress.read_text())["rows"] == 500
        assert len(stored(srv, "cli", "docs")) == 500
        # A crash between the server's acknowledgement and the progress file: the last batch again.
        progress.write_text(json.dumps(json.loads(progress.read_text()) | {"rows": 400}))
        out = ok(run(srv, "import", "-b", "cli", "-i", "docs", str(src)))
        assert "resuming after row 400" in out and "imported 900 vectors" in out
        assert not progress.exists()
        check(srv, "docs", keys, vectors, metas)
        r = run(srv, "import", "-b", "cli", "-i", "docs", "--stop-after", "1", str(src))
        assert r.exit_code == 1 and progress.exists()
        out = ok(run(srv, "import", "-b", "cli", "-i", "docs", "--no-resume", str(src)))
        assert "imported 1300 vectors" in out and not progress.exists()
        assert len(stored(srv, "cli", "docs")) == 1300


def test_throttled_writes_are_retried(tmp_path: Path) -> None:
    backend = make_backend("local", tmp_path, lambda: "")
    # Each batch of 500 drains the bucket of 400 vectors/s below zero: the next waits ~1.25 s, retried.
    throttled = replace(backend.settings, write_vectors_per_second=400.0)
    src = tmp_path / "v.parquet"
    keys, vectors, metas = write_parquet(src, 1500)
    with running_server(backend, engine=throttled) as srv:
        out = ok(run(srv, "import", "-b", "cli", "-i", "docs", "--create-index", str(src)))
        assert "imported 1500 vectors" in out and "throttled writes retried" in out
        check(srv, "docs", keys, vectors, metas)


def status(srv: RunningServer, index: str) -> dict[str, Any]:
    remote = Remote(srv.url, "us-east-1", ALICE.access_key_id, ALICE.secret_access_key)
    got = remote.index_status("cli", index)
    assert got is not None
    return got


def test_ls_status_and_query(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "v.parquet"
    keys, vectors, _ = write_parquet(src, 2100)
    folding_off = replace(backend.settings, run_materializers=False)
    with running_server(backend, engine=folding_off) as srv:
        ok(run(srv, "import", "-b", "cli", "-i", "docs", "--create-index", "--metric", "euclidean", str(src)))
        srv.s3vectors().delete_vectors(vectorBucketName="cli", indexName="docs", keys=keys[:2])
        s = status(srv, "docs")
        assert (s["vectors"], s["materializedSeq"], s["logSeq"], s["lag"], s["indexType"]) == (2098, -1, 5, 6, "flat")
        assert "cli" in ok(run(srv, "ls"))
        listing = ok(run(srv, "ls", "--bucket", "cli"))
        assert "docs" in listing and "2098" in listing and "euclidean" in listing and "flat" in listing
    with running_server(backend) as srv:
        srv.s3vectors().delete_vectors(vectorBucketName="cli", indexName="docs", keys=keys[2:3])
        deadline = time.monotonic() + 120
        while (s := status(srv, "docs"))["lag"] or s["indexType"] != "IVF_SQ":
            assert time.monotonic() < deadline, s
            time.sleep(0.2)
        assert (s["vectors"], s["materializedSeq"], s["logSeq"]) == (2097, 6, 6) and s["partitions"] > 0
        listing = ok(run(srv, "ls", "-b", "cli"))
        assert "2097" in listing and f"IVF_SQ ({s['partitions']} partitions)" in listing

        query = json.dumps(vectors[1000].tolist())
        out = ok(run(srv, "query", "-b", "cli", "-i", "docs", "--vector", query, "-k", "3", "--metadata"))
        first = next(line for line in out.splitlines() if line.strip().startswith("│ 1"))
        assert keys[1000] in first and '"n":1000' in out.replace(" ", "")
        np.save(tmp_path / "q.npy", vectors[1500:1501])
        out = ok(run(srv, "query", "-b", "cli", "-i", "docs", "--vector-file", str(tmp_path / "q.npy"), "--json"))
        assert orjson.loads(out)["vectors"][0]["key"] == keys[1500]
        flt = json.dumps({"genre": "b"})
        out = ok(run(srv, "query", "-b", "cli", "-i", "docs", "--vector", query, "--filter", flt, "--json"))
        assert all(int(v["key"][1:]) % 3 == 1 for v in orjson.loads(out)["vectors"])


def test_errors_say_what_to_do(tmp_path: Path) -> None:
    backend = make_backend("local", tmp_path, lambda: "")
    keys, vectors, _ = data(10)
    lines = [json.dumps({"key": k, "vector": v.tolist()}) + "\n" for k, v in zip(keys, vectors, strict=True)]
    (tmp_path / "v.jsonl").write_text("".join(lines))
    (tmp_path / "v.txt").write_text("")
    with running_server(backend) as srv:
        r = run(srv, "import", "-b", "cli", "-i", "docs", str(tmp_path / "v.jsonl"))
        assert r.exit_code == 1 and "does not exist; pass --create-index" in r.output
        r = run(
            srv, "import", "-b", "cli", "-i", "docs", "--create-index", "--dimension", "4", str(tmp_path / "v.jsonl")
        )
        assert r.exit_code == 1 and "'k00000' has 8 dimensions; the index has 4" in r.output
        r = run(srv, "import", "-b", "cli", "-i", "docs", str(tmp_path / "v.txt"))
        assert r.exit_code == 1 and "cannot tell the format of v.txt; pass --format" in r.output
        r = run(srv, "ls", "--bucket", "nope")
        assert r.exit_code == 1 and "vecledger ls" in r.output
        r = run(srv, "ls", key="AKIANOBODY", secret="wrong")
        assert r.exit_code == 1 and "refused the request" in r.output and "VECLEDGER_ACCESS_KEY_ID" in r.output
        r = run(srv, "query", "-b", "cli", "-i", "docs", "--vector", "[0.1,")
        assert r.exit_code == 2 and "JSON list of numbers" in r.output
        r = run(srv, "query", "-b", "cli", "-i", "docs")
        assert r.exit_code == 2 and "--vector-file" in r.output

    script = str(Path(sys.executable).with_name("vecledger"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECLEDGER_")}
    url = f"http://127.0.0.1:{free_port()}"
    out = subprocess.run([script, "ls", "--endpoint", url], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"no vecledger server at {url}" in out.stderr and "vecledger serve" in out.stderr
    out = subprocess.run([script, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Use a running server" in out.stdout and "import" in out.stdout
    out = subprocess.run([script, "replay", "--bucket", "b", "--index", "i"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "needs --check" in out.stderr


def test_retention_is_set_by_the_owner_and_audited(srv: RunningServer) -> None:
    from tests.api.test_admin import admin
    from tests.server import BOB

    client = srv.s3vectors()
    client.create_vector_bucket(vectorBucketName="kept")
    client.create_index(
        vectorBucketName="kept", indexName="docs", dataType="float32", dimension=3, distanceMetric="cosine"
    )
    out = ok(run(srv, "retention", "--bucket", "kept", "--index", "docs", "--pitr-window", "2d"))
    assert "kept/docs keeps restore points for 2d (its own) and its log forever (the server's default)" in out
    out = ok(run(srv, "retention", "--bucket", "kept", "--index", "docs", "--log-retention", "30d"))
    assert "restore points for 2d (its own) and its log for 30d (its own)" in out  # the window stayed
    out = ok(run(srv, "retention", "--bucket", "kept", "--index", "docs", "--log-retention", "forever"))
    assert "and its log forever (its own)" in out
    out = ok(run(srv, "retention", "--bucket", "kept", "--index", "docs", "--default"))
    assert "for 1w (the server's default) and its log forever (the server's default)" in out
    bad = run(srv, "retention", "--bucket", "kept", "--index", "docs", "--pitr-window", "soon")
    assert bad.exit_code != 0 and "is not a duration" in bad.output
    for bad in ({"logRetentionSeconds": -5}, {"pitrWindowSeconds": 0}, {"logRetentionSeconds": "soon"}):
        status, body = admin(srv, "retention", {"vectorBucketName": "kept", "indexName": "docs", **bad})
        assert status == 400 and body["code"] == "ValidationException", (bad, body)
    status, body = admin(srv, "retention", {"vectorBucketName": "kept", "indexName": "docs", "logRetentionSeconds": 60})
    assert status == 200 and body["logRetentionSeconds"] == 60 and body["pitrWindowDefault"], body
    status, body = admin(
        srv, "retention", {"vectorBucketName": "kept", "indexName": "docs", "pitrWindowSeconds": 60}, BOB
    )
    assert status == 404, body  # Bob names buckets of his own account: he cannot reach this one
    status, records = admin(srv, "audit", {"vectorBucketName": "kept", "type": "SetIndexRetention"})
    assert (
        status == 200
        and [(r["operation"], r["principal"], r["outcome"]) for r in records["records"]]
        == [("SetIndexRetention", ALICE.principal, "accepted")] * 5
    ), records
