"""The ``s3://bucket/prefix`` backend: runs straight into an S3 bucket, no tracking server needed.

Layout under the prefix (content addressing and exactly-once records, as on disk)::

    blobs/ab/<sha256>                        one object per blob, shared by every run
    runs/<run_id>/run.json                   identity and status (the project is inside)
    runs/<run_id>/records/<first>-<last>     immutable msgpack batches, keyed by seq range

A blob is checked against its name before it is sent and every blob body goes with the
sha256 that SigV4 signs (the store refuses a body that does not match it), so a blob object
never holds other bytes than its name says; blobs above ``multipart_threshold`` go up as a multipart upload whose parts are
found again (``ListParts``) after a crash, so the upload resumes. A records object is
written with ``If-None-Match: *``: two uploaders of one run can only write the same batch
bytes under one key, and readers merge batches by seq, so every record is read exactly once.

The endpoint comes from ``?endpoint_url=`` or ``AWS_ENDPOINT_URL``; credentials from the
usual AWS variables or files (never from the URL). Needs ``boto3`` (``tracker_sdk[scale]``).
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..errors import (BlobIntegrityError, InvalidArgumentError, MissingBlobsError, MissingDependencyError,
                      RunFormatError, ServerRejectedError, ServerUnavailableError)
from ..runformat import records as rec
from ..runformat.names import check_hex_id, check_sha256

MIN_PART = 5 << 20  # S3's smallest part (all but the last)
DEFAULT_PART = 8 << 20
DEFAULT_MULTIPART_THRESHOLD = 64 << 20
DEFAULT_PARALLEL_PARTS = 4  # parts of one blob in flight at once (boto3's transfer manager sends 10)
_RANGE = re.compile(r"^(\d{12})-(\d{12})\.msgpack$")


def _import_boto3():
    try:
        import boto3
        import botocore
    except ImportError:
        raise MissingDependencyError("boto3", "scale", "the s3:// backend") from None
    return boto3, botocore


def _md5(data) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def parse_s3_uri(uri: str) -> tuple[str, str, dict]:
    """``s3://bucket/prefix?endpoint_url=...&region=...`` -> (bucket, prefix, options)."""
    parts = urlsplit(str(uri))
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise InvalidArgumentError(f"url must look like s3://bucket/prefix; got {uri!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"endpoint_url", "region"})
    if unknown:
        raise InvalidArgumentError(f"s3:// url options are endpoint_url and region; got {unknown} in {uri!r}")
    return parts.netloc, parts.path.strip("/"), query


class S3Backend:
    """Uploads runs into ``s3://bucket/prefix`` (see the module docstring for the layout).

    Parameters
    ----------
    uri : str
        ``s3://bucket/prefix``, optionally ``?endpoint_url=http://host:port&region=...``.
    api_key : ignored
        Accepted for symmetry with the server backend (a ported script may pass one);
        S3 credentials come from the AWS environment.
    chunk_size : int
        Bytes per multipart part (at least 5 MiB).
    chunk_threshold : int
        Blobs above this size go up in parts and resume after a crash.
    parallel_parts : int
        Parts of one blob sent at once.
    client : botocore S3 client, optional
        Used as given (tests, custom sessions); otherwise one is made with path-style
        addressing, bounded timeouts and the standard retry mode.
    """

    def __init__(self, uri: str, *, api_key: str | None = None, chunk_size: int = DEFAULT_PART,
                 chunk_threshold: int = DEFAULT_MULTIPART_THRESHOLD, parallel_parts: int = DEFAULT_PARALLEL_PARTS,
                 client=None):
        self.bucket, self.prefix, options = parse_s3_uri(uri)
        if chunk_size < MIN_PART:
            raise InvalidArgumentError(f"chunk_size must be at least {MIN_PART} bytes (S3's smallest part); "
                                       f"got {chunk_size}")
        if isinstance(parallel_parts, bool) or not isinstance(parallel_parts, int) or parallel_parts < 1:
            raise InvalidArgumentError(f"parallel_parts must be a positive int; got {parallel_parts!r}")
        self.part_size = int(chunk_size)
        self.parallel_parts = parallel_parts
        self.multipart_threshold = max(int(chunk_threshold), self.part_size)
        endpoint = options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
        self.url = f"s3://{self.bucket}/{self.prefix}" + (f"?endpoint_url={endpoint}" if endpoint else "")
        boto3, botocore = _import_boto3()
        self._client_errors = (botocore.exceptions.ClientError,)
        self._network_errors = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                                botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)
        if client is None:
            config = botocore.config.Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=60,
                                            retries={"mode": "standard", "max_attempts": 3},
                                            request_checksum_calculation="when_required",
                                            response_checksum_validation="when_required")
            client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=options.get("region"),
                                                    config=config)
        self.client = client
        s3_config = getattr(client.meta.config, "s3", None) or {}
        self._signs_payload = s3_config.get("payload_signing_enabled", True) is not False
        self._next: dict[str, int] = {}
        self._present: set[str] = set()

    # -- keys ----------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def blob_key(self, sha256: str) -> str:
        return self._key("blobs", sha256[:2], sha256)

    def _run_key(self, run_id: str, *rest: str) -> str:
        return self._key("runs", check_hex_id(run_id), *rest)

    # -- errors --------------------------------------------------------------------------
    def _call(self, what: str, fn, **kwargs):
        """One S3 request; its errors become the sync error tree (4xx refused, the rest retryable)."""
        try:
            return fn(**kwargs)
        except self._client_errors as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = exc.response.get("Error", {}).get("Code", "")
            message = f"{what} on {self.url}: {code or status} {exc.response.get('Error', {}).get('Message', '')}"
            if 400 <= status < 500 and status not in (408, 429):
                raise ServerRejectedError(message.strip(), status) from None
            raise ServerUnavailableError(message.strip()) from None
        except self._network_errors as exc:
            raise ServerUnavailableError(f"{what} on {self.url}: {exc}") from None

    def _transfer_check(self, body: bytes) -> dict:
        """What guards a blob's bytes on the way: the payload's sha256 that botocore signs (SigV4,
        checked by the store) where no Content-MD5 is sent, so a second hash pass (MD5) is only
        spent when the client's configuration turned payload signing off."""
        return {} if self._signs_payload else {"ContentMD5": _md5(body)}

    def _status(self, exc) -> int:
        return getattr(exc, "status", 0)

    # -- runs ----------------------------------------------------------------------------
    def put_run(self, project: str, run_id: str, info: dict) -> int:
        info = {**info, "project": project, "run_id": run_id}
        try:
            stored = self.read_info(run_id)
        except ServerRejectedError as exc:
            if exc.status not in (403, 404):
                raise
            stored = None
        if stored is not None and stored.get("project") != project:
            raise ServerRejectedError(f"run {run_id} already exists in project {stored.get('project')!r} on "
                                      f"{self.url}", 409)
        if stored != info:  # only a change is written: a re-upload leaves the bucket untouched
            body = (json.dumps(info, sort_keys=True) + "\n").encode()
            self._call("PUT run.json", self.client.put_object, Bucket=self.bucket,
                       Key=self._run_key(run_id, "run.json"), Body=body, ContentMD5=_md5(body),
                       ContentType="application/json")
        self._next[run_id] = self._stored_next_seq(run_id)
        return self._next[run_id]

    def _batches(self, run_id: str) -> list[tuple[int, int, str]]:
        """(first seq, last seq, key) of every records object of the run, sorted."""
        found, token = [], None
        prefix = self._run_key(run_id, "records") + "/"
        while True:
            kwargs = {"Bucket": self.bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            page = self._call("LIST records", self.client.list_objects_v2, **kwargs)
            for item in page.get("Contents", []):
                match = _RANGE.match(item["Key"][len(prefix):])
                if match:
                    found.append((int(match.group(1)), int(match.group(2)), item["Key"]))
            if not page.get("IsTruncated"):
                return sorted(found)
            token = page["NextContinuationToken"]

    def _stored_next_seq(self, run_id: str) -> int:
        """Records held from seq 0 without a gap (overlapping batches of two uploaders merge)."""
        covered = 0
        for first, last, _ in self._batches(run_id):
            if first > covered:
                break
            covered = max(covered, last + 1)
        return covered

    def append_records(self, run_id: str, records: list) -> int:
        if not records:
            return self._next.get(run_id, 0)
        next_seq = self._next.get(run_id)
        if next_seq is None or records[0].seq > next_seq:
            next_seq = self._next[run_id] = self._stored_next_seq(run_id)
        if records[0].seq > next_seq:
            return next_seq  # a gap: the caller resends from next_seq
        batch = [r for r in records if r.seq >= next_seq]
        if not batch:
            return next_seq
        missing = [sha for sha in dict.fromkeys(s for r in batch for s in rec.blob_hashes(r)) if not self.has_blob(run_id, sha)]
        if missing:
            raise MissingBlobsError(f"{self.url} lacks {len(missing)} blob(s) named by records of run {run_id}", missing)
        body = rec.encode_batch(batch)
        key = self._run_key(run_id, "records", f"{batch[0].seq:012d}-{batch[-1].seq:012d}.msgpack")
        try:
            self._call("PUT records", self.client.put_object, Bucket=self.bucket, Key=key, Body=body,
                       ContentMD5=_md5(body), ContentType="application/msgpack", IfNoneMatch="*")
        except ServerRejectedError as exc:
            if exc.status != 412:  # 412: this exact batch is already stored
                raise
        self._next[run_id] = batch[-1].seq + 1
        return self._next[run_id]

    # -- blobs ---------------------------------------------------------------------------
    def has_blob(self, run_id: str, sha256: str) -> bool:
        if sha256 in self._present:
            return True
        try:
            self._call("HEAD blob", self.client.head_object, Bucket=self.bucket, Key=self.blob_key(check_sha256(sha256)))
        except ServerRejectedError as exc:
            if exc.status in (403, 404):  # HEAD has no body: a missing key may read as either
                return False
            raise
        self._present.add(sha256)
        return True

    def put_blob(self, run_id: str, sha256: str, path: Path, size: int, progress=None) -> None:
        check_sha256(sha256)
        progress = progress or (lambda n: None)
        if size > self.multipart_threshold:
            self._put_multipart(sha256, Path(path), size, progress)
        else:
            data = Path(path).read_bytes()  # the uploader checked its hash
            self._call("PUT blob", self.client.put_object, Bucket=self.bucket, Key=self.blob_key(sha256), Body=data,
                       ContentType="application/octet-stream", **self._transfer_check(data))
            progress(size)
        self._present.add(sha256)

    def _open_upload(self, key: str) -> tuple[str, dict[int, dict]]:
        """An unfinished multipart upload of ``key`` (with its parts) to resume, or a new one."""
        listing = self._call("LIST uploads", self.client.list_multipart_uploads, Bucket=self.bucket, Prefix=key)
        for upload in sorted(listing.get("Uploads", []), key=lambda u: u["Initiated"]):
            if upload["Key"] != key:
                continue
            parts, marker = {}, 0
            while True:
                page = self._call("LIST parts", self.client.list_parts, Bucket=self.bucket, Key=key,
                                  UploadId=upload["UploadId"], PartNumberMarker=marker)
                for part in page.get("Parts", []):
                    parts[part["PartNumber"]] = {"ETag": part["ETag"], "Size": part["Size"]}
                if not page.get("IsTruncated"):
                    return upload["UploadId"], parts
                marker = page["NextPartNumberMarker"]
        created = self._call("CREATE upload", self.client.create_multipart_upload, Bucket=self.bucket, Key=key,
                             ContentType="application/octet-stream")
        return created["UploadId"], {}

    def _put_multipart(self, sha256: str, path: Path, size: int, progress) -> None:
        """Parts go up ``parallel_parts`` at a time, each read, MD5-summed and sent by its own thread
        (hashlib and sockets release the GIL), so memory stays at parallel_parts x part size. The
        blob's sha256 was checked by the uploader before it called; Content-MD5 guards each part."""
        key = self.blob_key(sha256)
        upload_id, stored = self._open_upload(key)
        fd = os.open(path, os.O_RDONLY)

        def send(number: int, offset: int) -> dict:
            chunk = os.pread(fd, min(self.part_size, size - offset), offset)
            kept = stored.get(number)
            if kept is not None and kept["Size"] == len(chunk) and kept["ETag"].strip('"') == hashlib.md5(chunk).hexdigest():
                return {"PartNumber": number, "ETag": kept["ETag"]}  # uploaded before a crash
            answer = self._call("PUT part", self.client.upload_part, Bucket=self.bucket, Key=key, UploadId=upload_id,
                                PartNumber=number, Body=chunk, **self._transfer_check(chunk))
            progress(len(chunk))
            return {"PartNumber": number, "ETag": answer["ETag"]}

        try:
            with concurrent.futures.ThreadPoolExecutor(self.parallel_parts, thread_name_prefix="tracker-s3-part") as pool:
                done = list(pool.map(send, *zip(*enumerate(range(0, size, self.part_size), start=1))))
        finally:
            os.close(fd)
        self._call("COMPLETE upload", self.client.complete_multipart_upload, Bucket=self.bucket, Key=key,
                   UploadId=upload_id, MultipartUpload={"Parts": done})
        head = self._call("HEAD blob", self.client.head_object, Bucket=self.bucket, Key=key)
        if int(head["ContentLength"]) != size:
            raise BlobIntegrityError(f"{self.url} holds {head['ContentLength']} bytes for blob {sha256}, not {size}")

    # -- reading back ----------------------------------------------------------------------
    def list_runs(self) -> list[tuple[str, str]]:
        """``(project, run_id)`` of every run in the bucket prefix."""
        runs, token = [], None
        prefix = self._key("runs") + "/"
        while True:
            kwargs = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/",
                      **({"ContinuationToken": token} if token else {})}
            page = self._call("LIST runs", self.client.list_objects_v2, **kwargs)
            for common in page.get("CommonPrefixes", []):
                run_id = common["Prefix"][len(prefix):].strip("/")
                runs.append((self.read_info(run_id).get("project", ""), run_id))
            if not page.get("IsTruncated"):
                return sorted(runs)
            token = page["NextContinuationToken"]

    def read_info(self, run_id: str) -> dict:
        body = self._call("GET run.json", self.client.get_object, Bucket=self.bucket,
                          Key=self._run_key(run_id, "run.json"))["Body"].read()
        return json.loads(body)

    def read_records(self, run_id: str) -> list:
        """Every stored record of the run once, in seq order (overlapping batches merged)."""
        by_seq = {}
        for _, _, key in self._batches(run_id):
            obj = self._call("GET records", self.client.get_object, Bucket=self.bucket, Key=key)
            body = obj["Body"].read()
            if obj.get("ETag", "").strip('"') not in ("", hashlib.md5(body).hexdigest()):
                raise RunFormatError(f"{self.url}/{key} changed in transit (MD5 differs from its ETag)")
            for record in rec.decode_batch(body, where=f"{self.url}/{key}"):
                by_seq.setdefault(record.seq, record)
        ordered = [by_seq[s] for s in sorted(by_seq)]
        if [r.seq for r in ordered] != list(range(len(ordered))):
            raise RunFormatError(f"records of run {run_id} on {self.url} have a gap")
        return ordered

    def download_run(self, run_id: str, root) -> Path:
        """Copy the run into ``root/<project>/<run_id>`` in the run format (blobs verified on arrival)."""
        from ..runformat import RunWriter
        from ..runformat.files import commit_blob

        info = self.read_info(run_id)
        run_dir = Path(root) / info["project"] / run_id
        writer = RunWriter(run_dir, info={k: v for k, v in info.items() if k != "format_version"})
        try:
            for record in self.read_records(run_id):
                for sha in rec.blob_hashes(record):
                    obj = self._call("GET blob", self.client.get_object, Bucket=self.bucket, Key=self.blob_key(sha))
                    commit_blob(run_dir, obj["Body"].iter_chunks(1 << 20), sha256=sha,
                                size=int(obj["ContentLength"]))
                writer.replay(record)
        finally:
            writer.close()
        return run_dir

    def close(self) -> None:
        """boto3 clients hold a connection pool; nothing to release by hand."""
