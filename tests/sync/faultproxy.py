"""A fault-injecting HTTP proxy on loopback, in a thread, in front of a real server.

Per request it draws one of: ``pass``; ``503`` or ``429`` answered by the proxy itself with
a ``Retry-After``; ``reset`` (TCP RST before anything is forwarded); ``drop_ack`` (the
request is forwarded, the server commits it, and the client gets a reset instead of the
answer); ``corrupt`` (one byte of a blob body, a PUT or PATCH of blob bytes, is flipped on
the way; other requests pass). Every decision is logged with its time so tests can check
what the client did.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import socket
import socketserver
import struct
import threading
import time

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


class FaultProxy:
    def __init__(self, upstream_port: int, faults: dict[str, float] | None = None, *, seed: int = 0,
                 retry_after_429: str = "1", retry_after_503: str = "0"):
        self.upstream_port = upstream_port
        self.faults = dict(faults or {})
        self.rng = random.Random(seed)
        self.retry_after_429 = retry_after_429
        self.retry_after_503 = retry_after_503
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self.events: list[tuple[float, str, str, str]] = []  # (time, method, path, fault)
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                proxy._serve_connection(self)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _choose(self, method: str, path: str) -> str:
        with self.lock:
            draw, fault = self.rng.random(), "pass"
            for name, probability in self.faults.items():
                if draw < probability:
                    fault = name
                    break
                draw -= probability
            self.counts[fault] += 1
            self.events.append((time.monotonic(), method, path, fault))
            return fault

    @staticmethod
    def _reset(handler) -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()

    def _serve_connection(self, handler) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            while True:
                line = handler.rfile.readline(65537)
                if not line or not line.strip():
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = []
                while True:
                    header = handler.rfile.readline(65537)
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, value = header.decode("latin-1").split(":", 1)
                    headers.append((name.strip(), value.strip()))
                length = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
                body = handler.rfile.read(length) if length else b""
                fault = self._choose(method, path)
                if fault == "corrupt" and body and method in ("PUT", "PATCH") and ("/blobs/" in path
                                                                                or "/uploads/" in path):
                    flipped = bytearray(body)
                    flipped[len(flipped) // 2] ^= 0x01
                    body = bytes(flipped)
                if fault == "reset":
                    self._reset(handler)
                    return
                if fault in ("503", "429"):
                    status = {"503": "503 Service Unavailable", "429": "429 Too Many Requests"}[fault]
                    retry_after = self.retry_after_503 if fault == "503" else self.retry_after_429
                    payload = json.dumps({"error": f"injected {fault}"}).encode()
                    head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                            f"Retry-After: {retry_after}\r\nContent-Length: {len(payload)}\r\n\r\n")
                    handler.wfile.write(head.encode() + (b"" if method == "HEAD" else payload))
                    handler.wfile.flush()
                    continue
                forward = {k: v for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
                forward["Host"] = f"127.0.0.1:{self.upstream_port}"
                try:
                    upstream.request(method, path, body=body, headers=forward)
                    response = upstream.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException):
                    upstream.close()
                    self._reset(handler)
                    return
                if fault == "drop_ack":  # the server has committed; the client never hears of it
                    self._reset(handler)
                    return
                out = [f"HTTP/1.1 {response.status} {response.reason}"]
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        out.append(f"{name}: {value}")
                declared = response.getheader("content-length")
                out.append(f"Content-Length: {declared if method == 'HEAD' and declared else len(data)}")
                handler.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)
                handler.wfile.flush()
        except (OSError, ValueError):
            return
        finally:
            upstream.close()
