"""A real HTTP receiver for webhook tests: a threaded server on a loopback port that records
every request (path, headers, body) and answers from a script of (status, headers) pairs,
the last one repeated. ``slow_first``: seconds the first request waits before its answer
(a slow receiver, to kill a worker in the middle of a delivery); ``keep_alive``: answer in
HTTP/1.1 and keep the connection open (by default HTTP/1.0: one request per connection);
``answer_body``: what every answer carries (``ok``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int] = ("", 0)  # the sender's address and port: one port per connection


@dataclass
class Receiver:
    host: str
    port: int
    answers: list[tuple[int, dict[str, str]]]
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"


@contextmanager
def receiver(
    answers: list[tuple[int, dict[str, str]]] | None = None,
    host: str = "127.0.0.1",
    slow_first: float = 0.0,
    keep_alive: bool = False,
    answer_body: bytes = b"ok",
) -> Iterator[Receiver]:
    state = Receiver(host=host, port=0, answers=list(answers or [(200, {})]))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                state.requests.append(
                    Received(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        (self.client_address[0], self.client_address[1]),
                    )
                )
                first = len(state.requests) == 1
                status, headers = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
            if first and slow_first:
                time.sleep(slow_first)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer_body)))
            self.end_headers()
            self.wfile.write(answer_body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True  # kept-alive connections must not hold shutdown
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
