"""Shared plumbing for the vendor API mocks of the real-agent conformance kit.

Each mock (mock_anthropic.py, mock_openai.py, mock_gemini.py) is a small
stdlib HTTP server on 127.0.0.1 that answers like its vendor's API, so a
real agent CLI can run a whole turn offline. This module holds what they
share:

- the script: what the next requests get. The test writes
  ``<state>/script.json``: ``{"default": BEHAVIOUR, "queue": [BEHAVIOUR, ...]}``.
  Each request that is a model turn pops the head of ``queue`` (or uses
  ``default``). A BEHAVIOUR is an object; the keys every mock knows:
    ``reply``    text of the answer (default: "ok: " + the user's last text)
    ``delay_s``  seconds to wait before the first byte (a slow turn)
    ``stream_s`` seconds to spread the streamed text over (default 0)
    ``status``   HTTP status to answer instead (429, 529, 500 ...)
    ``headers``  extra response headers (for example a rate-limit reset)
    ``tool``     ask for a tool call (the CLI then shows its permission prompt);
                 a mock documents the tool names it supports
  The file is re-read on every request, so a test changes behaviour mid-run.
- the log: every request that is a model turn is appended to
  ``<state>/requests.jsonl`` as one JSON object ``{"ts", "path", "status",
  "user_text", "turn"}``, with ``user_text`` the text of the newest user
  message, so a test counts turns and checks their order and content.
  Other requests (token counts, model lists, telemetry) go to
  ``<state>/other.jsonl``.

Run a mock as ``python3 mock_x.py --state DIR [--port N]``: it binds
127.0.0.1 (port 0 picks a free one), writes the port to ``DIR/port`` and
prints it on stdout, then serves until killed. It never talks to anything
but its own clients.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()


class State:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.turns = 0

    def _path(self, name):
        return os.path.join(self.dir, name)

    def next_behaviour(self):
        """Pop the head of the script's queue (or its default), atomically."""
        with _lock:
            try:
                with open(self._path("script.json")) as f:
                    script = json.load(f)
            except (OSError, ValueError):
                script = {}
            queue = script.get("queue") or []
            if queue:
                behaviour = queue.pop(0)
                script["queue"] = queue
                tmp = self._path("script.json.tmp")
                with open(tmp, "w") as f:
                    json.dump(script, f)
                os.replace(tmp, self._path("script.json"))
            else:
                behaviour = script.get("default") or {}
            self.turns += 1
            return dict(behaviour), self.turns

    def log(self, name, record):
        record = dict(record)
        record.setdefault("ts", time.time())
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with _lock:
            with open(self._path(name), "a") as f:
                f.write(line)


class Handler(BaseHTTPRequestHandler):
    """Base handler: subclasses implement ``route(method, path, body)``."""

    protocol_version = "HTTP/1.1"
    state: State = None  # set by serve()

    def log_message(self, fmt, *args):  # quiet: the request log is ours
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {"_raw": raw.decode("utf-8", "replace")}

    def do_GET(self):
        self.route("GET", self.path, {})

    def do_POST(self):
        self.route("POST", self.path, self._body())

    def do_HEAD(self):
        self.send_json(200, {})

    def route(self, method, path, body):
        raise NotImplementedError

    # -- answers -------------------------------------------------------
    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_sse(self, headers=None):
        """Start a server-sent-events reply (chunked, so no length is needed)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()

    def sse(self, data, event=None):
        chunk = ""
        if event:
            chunk += f"event: {event}\n"
        chunk += f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n"
        self.chunk(chunk.encode())

    def chunk(self, data):
        if not data:
            return
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def pieces(text, n):
    """Split text into up to n pieces for streaming."""
    if n <= 1 or len(text) <= 1:
        return [text]
    size = max(1, len(text) // n)
    return [text[i : i + size] for i in range(0, len(text), size)]


def serve(handler_cls, argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    state = State(args.state)
    handler_cls.state = state
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_cls)
    server.daemon_threads = True
    port = server.server_address[1]
    with open(os.path.join(args.state, "port.tmp"), "w") as f:
        f.write(str(port))
    os.replace(os.path.join(args.state, "port.tmp"), os.path.join(args.state, "port"))
    print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit("mockbase is a library: run mock_<vendor>.py")
