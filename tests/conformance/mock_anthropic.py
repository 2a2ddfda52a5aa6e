#!/usr/bin/env python3
"""A mock of the Anthropic Messages API for the real-agent conformance kit.

Built on ``mockbase`` (read its docstring for the script and log formats).
Run: ``python3 mock_anthropic.py --state DIR [--port N]`` and start Claude Code
with ``ANTHROPIC_BASE_URL=http://127.0.0.1:<port>``.

Endpoints
---------
``POST /v1/messages`` (``?beta=true`` and any other query is ignored), streaming
(``"stream": true``: SSE ``message_start``, ``content_block_start``,
``ping``, ``content_block_delta``..., ``content_block_stop``,
``message_delta``, ``message_stop``) or not (one ``message`` object).
``POST /v1/messages/count_tokens`` answers ``{"input_tokens": N}``.
``GET /v1/models`` lists two models. Anything else gets ``200 {}``.
Every request that is not a model turn is logged to ``other.jsonl``
(``{"ts", "method", "path", "kind", ...}``).

Which requests are model turns
------------------------------
Claude Code (2.1.332 checked) sends, besides the real turns, side requests
on the same endpoint: a quota probe at start (``max_tokens`` 1, user text
``quota``), session-title / topic generation, Bash command-prefix checks and
summaries. They differ from a real turn in that a real turn (and only a real
turn) carries the agent's tool list: ``tools`` is a non-empty array holding
the ``Bash`` tool, and the system prompt starts with ``You are Claude Code``
(or names the ``Claude Agent SDK``). This mock calls a request a **model
turn** when it has tools containing ``Bash`` and ``max_tokens`` > 1; the
newest user message then decides what it is:

- its text (the last text block that is not a ``<system-reminder>`` or
  other injected context) is the user's turn: the script is popped (see
  below), and the request is logged to ``requests.jsonl``;
- if it holds only ``tool_result`` blocks, it is the continuation of a turn
  after a tool ran: it is answered with the behaviour's ``after_tool`` text
  (default ``"tool done"``), does NOT pop the script and is logged to
  ``other.jsonl`` with ``kind: "tool-continuation"``.

Everything else is a side request: answered with a short harmless text
(``Conformance test`` for a title, ``none`` for a command prefix, a
``{"isNewTopic": false, "title": null}`` JSON for topic checks) and logged to
``other.jsonl`` with its ``kind``.

Behaviours (``script.json``; mockbase's keys plus)
---------------------------------------------------
``reply``, ``delay_s``, ``stream_s``, ``status`` (429 gives a
``rate_limit_error`` body, 529 ``overloaded_error``, 500 ``api_error``, 401
``authentication_error``, others ``api_error``; ``retry-after`` defaults to 0
unless given in ``headers``), ``headers``, and:

``tool``
    ``"Bash"`` (or ``true``) asks for ``Bash`` with the harmless command
    ``touch muxvisor_tool_ran`` (run in Claude's working directory, which
    it needs a permission for); ``{"name": "Bash", "input": {...}}`` for any
    other tool call.
``after_tool``
    the text answered to the tool-result continuation.
``usage_limit``
    shortcut for the subscription usage-limit answer: a 429 with
    ``anthropic-ratelimit-unified-status: rejected``,
    ``anthropic-ratelimit-unified-reset`` (unix seconds: the value given, or
    now + 3 h when ``true``) and
    ``anthropic-ratelimit-unified-representative-claim: five_hour``. Claude
    Code shows its limit notice for it only when it runs on an OAuth token
    (``CLAUDE_CODE_OAUTH_TOKEN``), not an API key / auth token.
``repeat``
    keep this behaviour at the head of the queue for this many more
    model-turn requests (so a CLI's retries of the same request all get it).

Logs
----
With ``MOCK_DUMP=1`` in its environment the mock also appends every
``/v1/messages`` request in full (headers and body) to ``dump.jsonl``.
``requests.jsonl``: one line per model turn, written when the request
arrives: ``{"ts", "path", "status", "user_text", "turn", "history",
"user_texts", "n_messages", "model", "session_id", "stream"}`` where
``history`` is the list of the texts of all earlier user messages in the
request (a resumed conversation carries them), ``user_texts`` every text
block of the last user message (``user_text`` is the last of them) and ``session_id`` is the id Claude Code sends in
its ``metadata.user_id``/``x-claude-code-session-id`` when it does.
``replies.jsonl``: one line per model turn when its answer was completely
written: ``{"ts", "turn", "status", "arrived", "user_text"}`` (``ts`` is
when the last byte went out), so a test checks that no request arrived
mid-reply.
"""

import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mockbase  # noqa: E402

DEFAULT_TOOL_COMMAND = "touch muxvisor_tool_ran"

ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_qlock = threading.Lock()


def _text_of(content):
    """The user-typed text of one message's content (str or block list)."""
    texts = _texts_of(content)
    return texts[-1] if texts else ""


def _texts_of(content):
    """Every user-typed text block of one message's content, in order (two
    when a CLI folds two submitted prompts into one message)."""
    if isinstance(content, str):
        return [content]
    texts = []
    for block in content or []:
        if not isinstance(block, dict) or block.get("type") != "text":
            continue
        t = block.get("text") or ""
        s = t.lstrip()
        if s.startswith("<system-reminder>") or s.startswith("<command-") or s.startswith(
            "<local-command-"
        ) or s.startswith("Caveat: The messages below"):
            continue
        texts.append(t)
    return texts


def _has_tool_result(content):
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _system_text(body):
    s = body.get("system")
    if isinstance(s, str):
        return s
    if isinstance(s, list):
        return "\n".join(b.get("text", "") for b in s if isinstance(b, dict))
    return ""


def classify(body):
    """('turn'|'tool-continuation'|side-kind, user_text)."""
    msgs = body.get("messages") or []
    users = [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
    last = users[-1] if users else {}
    content = last.get("content")
    text = _text_of(content)
    tools = body.get("tools") or []
    names = {t.get("name") for t in tools if isinstance(t, dict)}
    if "Bash" in names and (body.get("max_tokens") or 0) > 1:
        if _has_tool_result(content) and not text.strip():
            return "tool-continuation", text
        return "turn", text
    system = _system_text(body)
    low = system.lower()
    if (body.get("max_tokens") == 1) or text.strip() == "quota":
        return "quota", text
    if "title" in low:
        return "title", text
    if "topic" in low:
        return "topic", text
    if "prefix" in low or "policy_spec" in low or "command injection" in low:
        return "bash-prefix", text
    if "summar" in low:
        return "summary", text
    return "side", text


def _session_id(headers, body):
    sid = headers.get("x-claude-code-session-id")
    if sid:
        return sid
    meta = body.get("metadata") or {}
    uid = meta.get("user_id")
    if isinstance(uid, str):
        # "user_<hash>_account_<uuid>_session_<uuid>" or a JSON string
        if "_session_" in uid:
            return uid.rsplit("_session_", 1)[1]
        try:
            return json.loads(uid).get("session_id")
        except (ValueError, AttributeError):
            return None
    return None


class AnthropicHandler(mockbase.Handler):
    def route(self, method, path, body):
        p = path.split("?", 1)[0].rstrip("/")
        if method == "POST" and p == "/v1/messages":
            return self.messages(path, body)
        if method == "POST" and p == "/v1/messages/count_tokens":
            self.state.log("other.jsonl", {"method": method, "path": path, "kind": "count_tokens"})
            n = max(1, len(json.dumps(body.get("messages") or [])) // 4)
            return self.send_json(200, {"input_tokens": n})
        if method == "GET" and p.startswith("/v1/models"):
            self.state.log("other.jsonl", {"method": method, "path": path, "kind": "models"})
            models = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in ("claude-sonnet-4-5", "claude-haiku-4-5")
            ]
            return self.send_json(
                200, {"data": models, "has_more": False, "first_id": models[0]["id"], "last_id": models[-1]["id"]}
            )
        self.state.log(
            "other.jsonl",
            {"method": method, "path": path, "kind": "unknown", "body": str(body)[:500]},
        )
        return self.send_json(200, {})

    # -- /v1/messages ----------------------------------------------------
    def _pop(self):
        """Pop a behaviour, honouring ``repeat`` (kept at the head N more times)."""
        with _qlock:
            beh, n = self.state.next_behaviour()
            rep = int(beh.get("repeat") or 0)
            if rep > 0:
                path = os.path.join(self.state.dir, "script.json")
                try:
                    with open(path) as f:
                        script = json.load(f)
                except (OSError, ValueError):
                    script = {}
                again = dict(beh)
                again["repeat"] = rep - 1
                script["queue"] = [again] + (script.get("queue") or [])
                with open(path + ".tmp", "w") as f:
                    json.dump(script, f)
                os.replace(path + ".tmp", path)
            return beh, n

    def messages(self, path, body):
        kind, text = classify(body)
        if os.environ.get("MOCK_DUMP"):
            self.state.log("dump.jsonl", {"path": path, "kind": kind,
                                          "headers": dict(self.headers.items()), "body": body})
        model = body.get("model") or "claude-sonnet-4-5"
        stream = bool(body.get("stream"))
        arrived = time.time()
        if kind != "turn":
            rec = {"method": "POST", "path": path, "kind": kind, "user_text": text,
                   "model": model, "stream": stream, "max_tokens": body.get("max_tokens"),
                   "system_head": _system_text(body)[:120]}
            self.state.log("other.jsonl", rec)
            if kind == "tool-continuation":
                beh = {}
                try:
                    with open(os.path.join(self.state.dir, "script.json")) as f:
                        beh = (json.load(f).get("default") or {})
                except (OSError, ValueError):
                    pass
                return self.answer(model, stream, beh.get("after_tool") or "tool done")
            reply = {
                "title": "Conformance test",
                "topic": '{"isNewTopic": false, "title": null}',
                "bash-prefix": "none",
                "quota": "ok",
            }.get(kind, "ok")
            return self.answer(model, stream, reply)

        beh, turn = self._pop()
        if beh.get("usage_limit"):
            reset = beh["usage_limit"]
            reset = int(time.time() + 3 * 3600) if reset is True else int(reset)
            hdrs = {
                "anthropic-ratelimit-unified-status": "rejected",
                "anthropic-ratelimit-unified-reset": str(reset),
                "anthropic-ratelimit-unified-representative-claim": "five_hour",
                "anthropic-ratelimit-unified-5h-status": "rejected",
                "anthropic-ratelimit-unified-5h-reset": str(reset),
            }
            hdrs.update(beh.get("headers") or {})
            beh = dict(beh, status=beh.get("status") or 429, headers=hdrs)
        status = int(beh.get("status") or 200)
        msgs = body.get("messages") or []
        users = [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
        history = [_text_of(m.get("content")) for m in users[:-1]]
        user_texts = _texts_of(users[-1].get("content")) if users else []
        self.state.log(
            "requests.jsonl",
            {
                "ts": arrived,
                "path": path,
                "status": status,
                "user_text": text,
                "turn": turn,
                "history": history,
                "user_texts": user_texts,
                "n_messages": len(msgs),
                "model": model,
                "stream": stream,
                "session_id": _session_id(self.headers, body),
            },
        )
        delay = float(beh.get("delay_s") or 0)
        if delay > 0:
            time.sleep(delay)
        try:
            if status != 200:
                etype = ERRORS.get(status, "api_error")
                msg = {
                    429: "Number of request tokens has exceeded your per-minute rate limit (mock)",
                    529: "Overloaded",
                }.get(status, "mock error %d" % status)
                hdrs = {"request-id": "req_mock_" + uuid.uuid4().hex[:20]}
                if status in (429, 529):
                    hdrs["retry-after"] = "0"
                hdrs.update(beh.get("headers") or {})
                self.send_json(
                    status,
                    {"type": "error", "error": {"type": etype, "message": msg},
                     "request_id": hdrs["request-id"]},
                    headers=hdrs,
                )
            else:
                reply = beh.get("reply")
                if reply is None:
                    reply = "ok: " + text
                self.answer(model, stream, reply, tool=beh.get("tool"),
                            stream_s=float(beh.get("stream_s") or 0), headers=beh.get("headers"))
        finally:
            self.state.log(
                "replies.jsonl",
                {"ts": time.time(), "turn": turn, "status": status, "arrived": arrived, "user_text": text},
            )

    def answer(self, model, stream, text, tool=None, stream_s=0.0, headers=None):
        mid = "msg_mock_" + uuid.uuid4().hex[:20]
        blocks = []
        if text:
            blocks.append({"type": "text", "text": text})
        if tool:
            if tool is True or isinstance(tool, str):
                tool = {"name": tool if isinstance(tool, str) else "Bash",
                        "input": {"command": DEFAULT_TOOL_COMMAND,
                                  "description": "Create a marker file"}}
            blocks.append({"type": "tool_use", "id": "toolu_mock_" + uuid.uuid4().hex[:16],
                           "name": tool.get("name", "Bash"), "input": tool.get("input") or {}})
        stop = "tool_use" if tool else "end_turn"
        out_tokens = max(1, len(text) // 4)
        usage = {"input_tokens": 100, "output_tokens": out_tokens,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        hdrs = {"request-id": "req_mock_" + uuid.uuid4().hex[:20]}
        hdrs.update(headers or {})
        if not stream:
            return self.send_json(200, {
                "id": mid, "type": "message", "role": "assistant", "model": model,
                "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage,
            }, headers=hdrs)
        self.start_sse(hdrs)
        self.sse({"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": dict(usage, output_tokens=1)}}, "message_start")
        self.sse({"type": "ping"}, "ping")
        for i, b in enumerate(blocks):
            if b["type"] == "text":
                self.sse({"type": "content_block_start", "index": i,
                          "content_block": {"type": "text", "text": ""}}, "content_block_start")
                parts = mockbase.pieces(b["text"], max(1, int(stream_s * 10)) if stream_s else 1)
                gap = stream_s / len(parts) if stream_s else 0
                for part in parts:
                    self.sse({"type": "content_block_delta", "index": i,
                              "delta": {"type": "text_delta", "text": part}}, "content_block_delta")
                    if gap:
                        time.sleep(gap)
            else:
                self.sse({"type": "content_block_start", "index": i,
                          "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"],
                                            "input": {}}}, "content_block_start")
                self.sse({"type": "content_block_delta", "index": i,
                          "delta": {"type": "input_json_delta",
                                    "partial_json": json.dumps(b["input"])}}, "content_block_delta")
            self.sse({"type": "content_block_stop", "index": i}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                  "usage": {"output_tokens": out_tokens}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")
        self.end_chunks()


if __name__ == "__main__":
    sys.exit(mockbase.serve(AnthropicHandler))
