"""Benchmark: scale-out on real services (PostgreSQL and Ceph's RADOS gateway as the S3 store).

1. Replicas: ``--clients`` threads, each uploading its own fresh run (``--embeddings`` embeddings
   of 8192 x 64 with labels, 200 metrics) with the SDK's HTTPBackend/Uploader, against one
   ``tracker-server`` replica and against two (clients spread round-robin), both on the same
   PostgreSQL database and the same gateway and bucket prefix; every run is checked whole
   (``next_seq`` through the other replica) after each round.
2. S3 backend: ``tracker upload``'s code path with the ``s3://`` backend
   (:mod:`tracker_sdk.sync.s3`) against raw boto3 ``upload_file`` (``put_object`` below the
   multipart threshold, multipart above) of the same blobs, with the TransferConfig and file
   parallelism that were fastest in a sweep run first (the sweep is recorded); target: the SDK
   moves the bytes at >= 70% of boto3's rate, i.e. takes <= 1/0.7 of its time.
3. Records POST p99: the same server code with ``--index-uri sqlite:///...`` and with
   ``--index-uri postgresql+psycopg://...`` (blobs in a directory for both), ``--clients``
   threads posting the same batches of 100 metric records into fresh runs; each round's
   figure is the p99 of its POSTs' latencies.

Needs the services' ``TRACKER_TEST_*`` variables (``eval "$(.ci/services/up.sh)"``, see
docs/deploy.md); without them it says so and exits 0. ``--start-services`` starts them itself
in a temporary directory and stops them at the end.

    .venv/bin/python benchmarks/scaleout.py --start-services --repeat 5
    .venv/bin/python benchmarks/scaleout.py --quick --only s3

Writes benchmarks/results/scaleout.json. Scratch files go under ``BENCH_TMP`` (default: the
system temp dir).
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from _harness import REPO, Bench, Candidate, Target, stop_process

ENV = ("TRACKER_TEST_POSTGRES_URL", "TRACKER_TEST_S3_ENDPOINT", "TRACKER_TEST_S3_ACCESS_KEY",
       "TRACKER_TEST_S3_SECRET_KEY", "TRACKER_TEST_S3_BUCKET")
RATE_TARGET = 0.7  # the SDK's S3 upload rate as a fraction of raw boto3's
RECORDS_PER_POST = 100


def say(text: str) -> None:
    print(f"[scaleout] {text}", file=sys.stderr, flush=True)


# -- services ------------------------------------------------------------------------------
class Services:
    """The services of ``.ci/services/up.sh``: the caller's (from the environment) or our own."""

    def __init__(self, start: bool):
        self.dir: str | None = None
        if start and any(not os.environ.get(name) for name in ENV):
            # short path: Unix socket paths of the daemons live inside it
            self.dir = tempfile.mkdtemp(prefix="tsvc.", dir="/tmp")
            say(f"starting the services in {self.dir} (.ci/services/up.sh)")
            try:
                subprocess.run([str(REPO / ".ci/services/up.sh"), self.dir], check=True, stdout=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, timeout=600)
            except BaseException:
                self.stop()
                raise
            for line in Path(self.dir, "services.env").read_text().splitlines():
                name, _, value = line.partition("=")
                os.environ[name] = value
        missing = [name for name in ENV if not os.environ.get(name)]
        self.missing = missing

    def stop(self) -> None:
        if self.dir is not None:
            subprocess.run([str(REPO / ".ci/services/down.sh"), self.dir], stdin=subprocess.DEVNULL, timeout=300)
            self.dir = None

    @property
    def postgres_url(self) -> str:
        return os.environ["TRACKER_TEST_POSTGRES_URL"]

    @property
    def endpoint(self) -> str:
        return os.environ["TRACKER_TEST_S3_ENDPOINT"]

    @property
    def bucket(self) -> str:
        return os.environ["TRACKER_TEST_S3_BUCKET"]

    def aws_env(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": os.environ["TRACKER_TEST_S3_ACCESS_KEY"],
                "AWS_SECRET_ACCESS_KEY": os.environ["TRACKER_TEST_S3_SECRET_KEY"], "AWS_DEFAULT_REGION": "us-east-1"}

    def s3_uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}?endpoint_url={self.endpoint}"

    def client(self):
        import boto3
        from botocore.config import Config

        env = self.aws_env()
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, max_pool_connections=32))

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object and unfinished multipart upload under ``prefix`` (keeps the OSD small)."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix + "/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        for upload in client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix + "/").get("Uploads", []):
            client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        conf = Path(os.environ.get("TRACKER_SERVICES_DIR") or "/nonexistent", "ceph.conf")
        if conf.is_file() and shutil.which("radosgw-admin"):
            # Ceph frees a deleted object's space in its garbage collection, by default hours later;
            # without this the rounds fill the test cluster's 10 GiB OSD and it stops taking writes
            subprocess.run(["radosgw-admin", "-c", str(conf), "gc", "process", "--include-all"], check=False,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)

    def database(self) -> "Database":
        return Database(self.postgres_url)


class Database:
    """A fresh PostgreSQL database for one part of the benchmark, dropped at the end."""

    def __init__(self, base_url: str):
        from sqlalchemy.engine import make_url

        base = make_url(base_url)
        self.name = f"bench_{uuid.uuid4().hex[:12]}"
        self._admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
        self.url = base.set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> "Database":
        import psycopg

        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc) -> None:
        import psycopg

        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- servers -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def migrate(index_uri: str) -> None:
    """``tracker-server migrate``: the schema every replica expects, applied once beforehand."""
    subprocess.run([sys.executable, "-m", "server_stub", "migrate", "--index-uri", index_uri], cwd=REPO, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)


class Replica:
    """One ``tracker-server`` process on an index URI and a blob URI; stopped by :meth:`stop`."""

    def __init__(self, scratch: Path, index_uri: str, blob_uri: str, env: dict):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = scratch / f"replica-{self.port}"
        self.log_path = scratch / f"replica-{self.port}.log"
        command = [sys.executable, "-m", "server_stub", "--root", str(self.root), "--create", "--port", str(self.port),
                   "--index-uri", index_uri, "--blob-uri", blob_uri]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env={**os.environ, **env})
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/v1/projects", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"replica on port {self.port} did not start: "
                                       f"{self.log_path.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc)


# -- runs ----------------------------------------------------------------------------------
def make_client_run(root: Path, seed: int, embeddings: int, *, metrics: int = 200, rows: int = 8192,
                    dim: int = 64) -> Path:
    """A finished offline run with fresh random blobs (nothing deduplicates across rounds)."""
    import numpy as np

    from tracker_sdk import OfflineExperiment

    rng = np.random.default_rng(seed)
    exp = OfflineExperiment(project_name="scaleout", offline_directory=str(root), quiet=True)
    exp.log_parameters({"seed": seed, "lr": 0.01})
    labels = [f"c{i % 10}" for i in range(rows)]
    for step in range(metrics):
        exp.log_metric("loss", float(rng.random()), step=step)
    for step in range(embeddings):
        exp.log_embedding(rng.standard_normal((rows, dim), dtype=np.float32), labels, title="layer", step=step,
                          reduce=None)
    exp.end()
    return exp.run_dir


def local_count(run_dir: Path) -> int:
    from tracker_sdk.runformat import open_run

    return len(open_run(run_dir).records)


def upload_all(runs: list[Path], urls: list[str]) -> None:
    """One thread per run, run i through ``urls[i % len(urls)]``; raise on any failure."""
    from tracker_sdk.sync.http import HTTPBackend
    from tracker_sdk.sync.uploader import Uploader

    def one(i: int) -> None:
        backend = HTTPBackend(urls[i % len(urls)])
        try:
            if not Uploader(backend, runs[i]).sync_once(final=True):
                raise RuntimeError(f"run {runs[i].name} not fully uploaded")
        finally:
            backend.close()

    with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
        for future in [pool.submit(one, i) for i in range(len(runs))]:
            future.result()


def check_runs(runs: list[Path], url: str) -> list[str]:
    """Problems of the stored runs as ``url`` answers: each must hold every local record once."""
    import json

    problems = []
    for run_dir in runs:
        with urllib.request.urlopen(f"{url}/api/v1/runs/{run_dir.name}", timeout=30) as response:
            next_seq = json.loads(response.read())["next_seq"]
        if next_seq != local_count(run_dir):
            problems.append(f"run {run_dir.name}: next_seq {next_seq} through {url}, {local_count(run_dir)} local")
    return problems


# -- 1. one replica against two ------------------------------------------------------------
def replicas(bench: Bench, services: Services, scratch: Path, clients: int, embeddings: int) -> None:
    prefix = f"bench/scaleout-{uuid.uuid4().hex}"
    problems: list[str] = []
    with services.database() as db:
        migrate(db.url)
        servers = []
        try:
            servers = [Replica(scratch, db.url, services.s3_uri(prefix), services.aws_env()) for _ in range(2)]
            rounds = iter(range(1_000_000))

            def fresh_runs() -> list[Path]:
                root = scratch / f"clients-{next(rounds)}"
                return [make_client_run(root, seed=int(uuid.uuid4().int % 2 ** 32), embeddings=embeddings)
                        for _ in range(clients)]

            def checked(urls: list[str]):
                def teardown(runs: list[Path]) -> None:
                    # read back through the replica the client did not use, where there is one
                    problems.extend(check_runs(runs, servers[-1].url if len(urls) == 1 else servers[0].url))
                    shutil.rmtree(runs[0].parents[1], ignore_errors=True)
                return Candidate(lambda runs: upload_all(runs, urls), fresh_runs, teardown)

            sample = fresh_runs()
            nbytes = sum(f.stat().st_size for run in sample for f in run.rglob("*") if f.is_file())
            records = sum(local_count(run) for run in sample)
            shutil.rmtree(sample[0].parents[1], ignore_errors=True)
            bench.compare(f"{clients} clients, each a run of {embeddings} embeddings of 8192x64 + 200 metrics", {
                "1 replica": checked([servers[0].url]),
                "2 replicas": checked([s.url for s in servers]),
            }, baseline="1 replica", bytes_per_round=nbytes, records_per_round=records)
        finally:
            for server in servers:
                server.stop()
            services.delete_prefix(prefix)
    bench.note("replicas_runs_whole", "yes" if not problems else problems[:5])


# -- 2. the S3 backend against raw boto3 -----------------------------------------------------
def s3_run(scratch: Path, megabytes: int) -> Path:
    """One large blob (multipart) and four of a quarter of its size (single PUTs)."""
    import numpy as np

    from tracker_sdk import OfflineExperiment

    rng = np.random.default_rng(0)
    big = megabytes // 2 << 20
    exp = OfflineExperiment(project_name="s3bench", offline_directory=str(scratch / "s3-run"), quiet=True)
    exp.log_embedding(rng.standard_normal((big // 1024, 256), dtype=np.float32), None, title="big", reduce=None)
    for i in range(4):
        exp.log_embedding(rng.standard_normal((big // 4096, 256), dtype=np.float32), None, title=f"part-{i}",
                          reduce=None)
    exp.end()
    return exp.run_dir


def s3_backend(bench: Bench, services: Services, scratch: Path, megabytes: int) -> None:
    from boto3.s3.transfer import TransferConfig

    from tracker_sdk.runformat import open_run
    from tracker_sdk.sync.s3 import S3Backend
    from tracker_sdk.sync.uploader import Uploader

    os.environ.update(services.aws_env())
    run_dir = s3_run(scratch, megabytes)
    run = open_run(run_dir)
    blobs = sorted(set(run.blob_refs()))
    nbytes = sum(run.blob_path(sha).stat().st_size for sha in blobs)
    client = services.client()
    problems: list[str] = []

    def prefix() -> str:
        return f"bench/s3-{uuid.uuid4().hex}"

    def raw(settings: dict):
        config = TransferConfig(multipart_threshold=settings["threshold"] << 20,
                                multipart_chunksize=settings["chunk"] << 20, max_concurrency=settings["concurrency"])

        def upload(where: str) -> None:
            def put(sha: str) -> None:
                client.upload_file(str(run.blob_path(sha)), services.bucket, f"{where}/blobs/{sha}", Config=config)
            with concurrent.futures.ThreadPoolExecutor(settings["files"]) as pool:
                list(pool.map(put, blobs))
        return Candidate(upload, prefix, services.delete_prefix)

    def sdk(where: str) -> None:
        if not Uploader(S3Backend(services.s3_uri(where)), run_dir).sync_once(final=True):
            raise RuntimeError("the S3 backend did not upload the whole run")

    def check_and_delete(where: str) -> None:
        stored = S3Backend(services.s3_uri(where)).read_records(run.run_id)
        if stored != run.records:
            problems.append(f"{len(stored)} records read back, {len(run.records)} local")
        services.delete_prefix(where)

    # boto3 in its best configuration: a short sweep (one run each), the fastest becomes the baseline
    # (multipart threshold and part size in MiB, threads per file, files at once); boto3's default is (8, 10, 1)
    grid = [(8, 10, 1), (8, 4, 2), (16, 4, 2), (64, 4, 1), (64, 4, 2), (64, 10, 2)]
    sweep = {}
    for chunk, concurrency, files in grid:
        settings = {"threshold": chunk, "chunk": chunk, "concurrency": concurrency, "files": files}
        name = f"chunk {chunk} MiB, {concurrency} threads per file, {files} files at once"
        sweep[name] = (settings, raw(settings).once())
        say(f"boto3 sweep: {name}: {sweep[name][1]:.2f} s")
    best = min(sweep, key=lambda name: sweep[name][1])
    bench.note("boto3_sweep_s", {name: round(seconds, 3) for name, (_, seconds) in sweep.items()})
    baseline = f"boto3 upload_file ({best})"
    result = bench.compare(f"upload of {nbytes / 2 ** 20:.0f} MiB in {len(blobs)} blobs to the gateway", {
        baseline: raw(sweep[best][0]),
        "tracker_sdk s3:// backend": Candidate(sdk, prefix, check_and_delete),
    }, baseline=baseline, target=Target("tracker_sdk s3:// backend", ratio=round(1 / RATE_TARGET, 3)), bytes=nbytes)
    rates = {name: nbytes / stats["median"] / 2 ** 20 for name, stats in result["candidates"].items()}
    bench.note("s3_rate_MiB_s", {name: round(rate, 1) for name, rate in rates.items()})
    bench.note("s3_rate_ratio", round(rates["tracker_sdk s3:// backend"] / rates[baseline], 3))
    bench.note("s3_records_read_back", "yes" if not problems else problems[:5])


# -- 3. records POST p99: PostgreSQL against SQLite -------------------------------------------
def post_p99(bench: Bench, services: Services, scratch: Path, clients: int, batches: int) -> None:
    import numpy as np

    from tracker_sdk.runformat import open_run
    from tracker_sdk.sync.http import HTTPBackend

    source = make_client_run(scratch / "p99-source", seed=1, embeddings=0, metrics=RECORDS_PER_POST * batches)
    template = open_run(source)
    # parameters + metrics only: the POSTs measure the index, not blob checks
    records = [r for r in template.records if r.seq < RECORDS_PER_POST * batches]
    posts = [records[i:i + RECORDS_PER_POST] for i in range(0, len(records), RECORDS_PER_POST)]
    latencies: dict[str, list[float]] = {}

    def posting(url: str, name: str):
        def fn() -> float:
            def one(_: int) -> list[float]:
                backend = HTTPBackend(url)
                run_id = uuid.uuid4().hex
                try:
                    backend.put_run("p99", run_id, {**template.info, "run_id": run_id, "project": "p99"})
                    for batch in posts:
                        backend.append_records(run_id, batch)
                    return list(backend.latencies["records"])
                finally:
                    backend.close()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                seconds = [s for part in pool.map(one, range(clients)) for s in part]
            latencies.setdefault(name, []).extend(seconds)
            return float(np.percentile(seconds, 99))
        return Candidate(fn, reports_seconds=True)

    with services.database() as db:
        migrate(db.url)
        sqlite_index = f"sqlite:///{scratch / 'p99-index.sqlite'}"
        migrate(sqlite_index)
        servers = []
        try:
            servers = [Replica(scratch, sqlite_index, str(scratch / "p99-blobs-sqlite"), {}),
                       Replica(scratch, db.url, str(scratch / "p99-blobs-postgres"), {})]
            bench.compare(f"records POST p99, {clients} clients x {len(posts)} POSTs of {RECORDS_PER_POST} records", {
                "SQLite index": posting(servers[0].url, "SQLite index"),
                "PostgreSQL index": posting(servers[1].url, "PostgreSQL index"),
            }, baseline="SQLite index", posts_per_round=clients * len(posts))
        finally:
            for server in servers:
                server.stop()
    bench.note("records_post_ms", {name: {"p50": round(1000 * float(np.percentile(s, 50)), 2),
                                          "p99": round(1000 * float(np.percentile(s, 99)), 2), "posts": len(s)}
                                   for name, s in latencies.items()})


def main() -> int:
    bench = Bench("scaleout", __doc__)
    parser = bench.parser
    parser.add_argument("--start-services", action="store_true",
                        help="start PostgreSQL and the gateways with .ci/services/up.sh (stopped at the end) "
                             "when the TRACKER_TEST_* variables are unset")
    parser.add_argument("--only", choices=("replicas", "s3", "p99"), help="run one part only")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--embeddings", type=int, default=4, help="embeddings of 8192 x 64 per client run")
    parser.add_argument("--s3-mb", type=int, default=256, help="MiB of blobs in the S3 upload")
    parser.add_argument("--batches", type=int, default=10, help=f"POSTs of {RECORDS_PER_POST} records per client")
    args = bench.parse()
    for name in ("clients", "embeddings", "s3_mb", "batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}")
    if args.quick:
        args.clients, args.embeddings, args.s3_mb, args.batches = 8, 2, 64, 2
    services = Services(args.start_services)
    try:
        if services.missing:
            print(f"scaleout: skipped: needs the real services ({', '.join(services.missing)} unset); start them "
                  'with `eval "$(.ci/services/up.sh)"` (docs/deploy.md) or pass --start-services')
            return 0
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"), prefix="scaleout-bench-") as tmp:
            scratch = Path(tmp)
            if args.only in (None, "replicas"):
                replicas(bench, services, scratch, args.clients, args.embeddings)
            if args.only in (None, "s3"):
                s3_backend(bench, services, scratch, args.s3_mb)
            if args.only in (None, "p99"):
                post_p99(bench, services, scratch, args.clients, args.batches)
    finally:
        services.stop()
    bench.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
