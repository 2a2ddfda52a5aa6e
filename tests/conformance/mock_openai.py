"""A mock of the OpenAI API for the real-agent conformance kit (Codex CLI, Aider).

Built on ``mockbase`` (read its docstring first: script, behaviours, logs,
``--state DIR [--port N]``). Binds 127.0.0.1 only and never talks to
anything but its own clients.

Endpoints (a ``/v1`` prefix is optional everywhere):

- ``POST /v1/responses`` -- the Responses API as Codex CLI 0.171.0 uses it
  (``wire_api = "responses"``; 0.171 refuses ``wire_api = "chat"``). The
  answer streams as server-sent events: ``response.created``,
  ``response.in_progress``, ``response.output_item.added``,
  ``response.content_part.added``, ``response.output_text.delta`` (several
  when ``stream_s`` > 0), ``response.output_text.done``,
  ``response.content_part.done``, ``response.output_item.done``,
  ``response.completed`` (with ``usage``). ``"stream": false`` gets the
  whole response object as JSON.
- ``POST /v1/chat/completions`` -- Chat Completions for Aider and other
  clients, streaming (``chat.completion.chunk`` lines, a final chunk with
  ``usage`` when ``stream_options.include_usage`` is set, then
  ``data: [DONE]``) or not (one ``chat.completion`` object).
- ``GET /v1/models`` and ``GET /v1/models/<id>`` -- an OpenAI-style model
  list (``{"object": "list", "data": [...]}``). Codex also asks
  ``GET /v1/models?client_version=...`` for its own catalogue; it gets the
  same list, cannot parse it, and falls back to its bundled catalogue
  (harmless). Logged to other.jsonl.
- ``GET /v1/responses`` (a WebSocket upgrade: Codex's built-in ``openai``
  provider tries Responses-over-WebSocket first) -> ``404``; Codex then
  falls back to HTTP POST at once. Logged to other.jsonl.
- anything else: ``404`` with an OpenAI error body, logged to other.jsonl.

Behaviours (the script's objects, see mockbase), as this mock reads them:

- ``reply``    the answer's text (default ``"ok: " + user_text``).
- ``delay_s``  seconds before the first byte (the HTTP status line).
- ``stream_s`` the text goes out in about 10 deltas per second over this
  many seconds (at least 2 deltas), after the first one is sent at once.
- ``status``   answer with this HTTP status and an OpenAI error body instead:
  429 -> ``{"error": {"type": "rate_limit_exceeded", "code":
  "rate_limit_exceeded", "message": ...}}``; 500 -> ``server_error``;
  503 -> ``{"error": {"code": "server_is_overloaded", ...}}`` (Codex then
  says the server is overloaded; give ``"error": {...}`` to override the
  body's error object). Codex may retry an error itself before it shows
  it (with cli_codex's ``request_max_retries = 1`` / ``stream_max_retries =
  1``: a plain 429 was asked once, 503 twice, 500 three times), and each
  retry is one more logged turn that pops the queue: put an error status
  in ``default`` (not ``queue``) to make sure it reaches the screen.
- ``usage_limit`` true (or ``status`` 429 with ``usage_limit`` true): a
  429 with ``{"error": {"type": "usage_limit_reached", "plan_type":
  "plus", "resets_at": <epoch s>, "resets_in_seconds": N}}`` where N is
  ``resets_in_seconds`` from the behaviour (default 3600). This is what
  codex-rs ``codex-api/src/api_bridge.rs`` ``map_api_error`` turns into
  ``UsageLimitReached`` (no retry), shown as ``You've hit your usage
  limit...`` (typographic apostrophe U+2019 on screen).
- ``headers``  extra response headers (any status).
- ``tool``     answer with a tool call instead of text. ``"shell"`` (or
  ``true``) asks to run ``tool_command`` (default ``"touch
  muxvisor-tool-probe"``) with the shell tool the request offers:
  ``exec_command`` (``{"cmd": ...}``), ``shell_command``
  (``{"command": ...}``), ``shell`` (``{"command": ["bash", "-lc",
  ...]}``), or a Chat Completions ``tools`` entry of the same names. With
  Codex's default ``approval_policy = "on-request"`` the call asks for
  escalated permissions (``sandbox_permissions: "require_escalated"``), so
  Codex shows ``Would you like to run the following command?``. ``"name"``
  in the behaviour forces a tool name; ``"arguments"`` (object) forces the
  arguments.
- ``error``    (object) the error body's ``error`` object for ``status``.

Turns and logs. A request is a *model turn* when it carries a conversation:
Responses ``input`` whose newest item is a user message or a tool output,
or Chat Completions ``messages``. Requests that Codex sends for its own
housekeeping are NOT turns and never pop the script; they get a short
canned answer (``{"title": "Mock title"}`` when a JSON schema is asked
for) and go to other.jsonl with ``"note": "responses-housekeeping"``.
Codex 0.171 sends one after the first turn of every thread: a thread-title
request (header ``x-codex-turn-metadata`` with ``"thread_source":
"thread_title"``, ``text.format`` a ``codex_output_schema`` JSON schema with
a ``title`` property, ``tools: []``); also skipped: any
``x-codex-turn-metadata`` whose ``thread_source`` is not ``user`` or whose
``request_kind`` is not ``turn``, the ``x-openai-memgen-request`` header,
``metadata`` naming compaction/title, and a Responses request with no user
message. Codex's own context items (``<environment_context>``,
``<permissions ...>``, AGENTS.md, ...) sent as user messages are not
``user_text``. Every turn appends ``{"ts", "path", "status", "user_text",
"turn", "kind", "model", "history"}`` to ``requests.jsonl`` when it arrives
(``ts`` = arrival, before ``delay_s``, as mock_anthropic; ``kind``:
``user`` for a new user message, ``tool_output`` for the follow-up after a
tool ran: it pops the queue like any turn; ``status`` is the HTTP status
that will be answered; ``history`` = the texts of the earlier user
messages of the request, Codex's context items left out, so a resumed
conversation shows). When the answer's last byte went out (or the client
went away) it appends ``{"ts", "turn", "status", "arrived", "user_text"}``
to ``replies.jsonl``, as mock_anthropic does (the kit's ``burst``,
``ready_after_turn`` and ``resume`` read both). Everything else goes to
``other.jsonl`` as ``{"ts", "method", "path", "status"}``. Set ``MOCK_OPENAI_DUMP=1`` to also write
every request (method, path, headers, body) to ``bodies.jsonl``.

Observed with Codex 0.171.0: a plain turn is one POST /v1/responses with
``stream: true``; the reply text shows as ``• <text>`` and, at the end,
``Worked for Ns • HH:MM``. ``status`` 429 -> ``■ exceeded retry limit, last
status: 429 Too Many Requests`` (one request, no retry); 500 -> three
requests, then ``■ We’re currently experiencing high demand, which may
cause temporary errors.``; 503 ``server_is_overloaded`` -> ``■ Selected
model is at capacity. Please try a different model.``; ``usage_limit`` ->
``■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro),
visit https://chatgpt.com/settings/usage to purchase more credits or try
again at 4:23 AM.`` (plan_type plus; U+2019 apostrophes).
"""

import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mockbase  # noqa: E402

MODELS = ["gpt-5-codex", "gpt-5", "gpt-4o", "gpt-4o-mini", "o3", "mock-model"]

SHELL_TOOLS = ("exec_command", "shell_command", "shell", "local_shell")


def _content_text(content):
    """Text of a message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    out = []
    for part in content or []:
        if isinstance(part, dict):
            if isinstance(part.get("text"), str):
                out.append(part["text"])
        elif isinstance(part, str):
            out.append(part)
    return "".join(out)


def _is_context_text(text):
    """Codex sends its environment/instructions as user messages: skip them."""
    t = text.lstrip()
    return t.startswith("<environment_context") or t.startswith("<user_instructions") or \
        t.startswith("# AGENTS.md") or t.startswith("<permissions") or \
        t.startswith("<user_shell_command") or t.startswith("<turn_aborted") or \
        t.startswith("<startup_context") or t.startswith("<skills") or \
        t.startswith("<INSTRUCTIONS>") or t.startswith("<collaboration_mode")


def responses_history(body):
    """Texts of the user messages before the newest one (context items left out)."""
    items = body.get("input")
    if not isinstance(items, list):
        return []
    texts = [_content_text(i.get("content")) for i in items
             if isinstance(i, dict) and i.get("type", "message") == "message"
             and i.get("role") == "user"]
    texts = [t for t in texts if not _is_context_text(t)]
    return texts[:-1]


def chat_history(body):
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return []
    texts = [_content_text(m.get("content")) for m in msgs
             if isinstance(m, dict) and m.get("role") == "user"]
    return texts[:-1]


def responses_user_text(body):
    """(user_text, kind) of a Responses request; kind None = not a turn."""
    items = body.get("input")
    if isinstance(items, str):
        return items, "user"
    if not isinstance(items, list) or not items:
        return None, None
    user_text = None
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type", "message") == "message" and item.get("role") == "user":
            text = _content_text(item.get("content"))
            if not _is_context_text(text):
                user_text = text
    last = items[-1] if isinstance(items[-1], dict) else {}
    last_type = last.get("type", "message")
    if last_type in ("function_call_output", "custom_tool_call_output", "local_shell_call_output",
                     "tool_search_output"):
        return user_text if user_text is not None else "", "tool_output"
    if user_text is None:
        return None, None
    return user_text, "user"


def chat_user_text(body):
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return None, None
    user_text = ""
    for m in msgs:
        if isinstance(m, dict) and m.get("role") == "user":
            user_text = _content_text(m.get("content"))
    last = msgs[-1] if isinstance(msgs[-1], dict) else {}
    return user_text, ("tool_output" if last.get("role") == "tool" else "user")


def offered_tools(body):
    names = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        name = t.get("name") or (t.get("function") or {}).get("name") or t.get("type")
        if name:
            names.append(name)
    return names


def tool_call(behaviour, tools):
    """(name, arguments dict) for a tool behaviour, fitted to the offered tools."""
    command = behaviour.get("tool_command") or "touch muxvisor-tool-probe"
    name = behaviour.get("name")
    if not name:
        name = next((n for n in SHELL_TOOLS if n in tools), "shell")
    args = behaviour.get("arguments")
    if args is None:
        justification = "muxvisor conformance probe: needs approval"
        if name == "exec_command":
            args = {"cmd": command, "sandbox_permissions": "require_escalated",
                    "justification": justification}
        elif name == "shell_command":
            args = {"command": command, "sandbox_permissions": "require_escalated",
                    "justification": justification}
        else:
            args = {"command": ["bash", "-lc", command], "sandbox_permissions": "require_escalated",
                    "justification": justification}
    return name, args


def usage_obj(user_text, reply):
    inp = max(1, len(user_text or "") // 4)
    out = max(1, len(reply or "") // 4)
    return inp, out


class OpenAIHandler(mockbase.Handler):
    def route(self, method, path, body):
        if os.environ.get("MOCK_OPENAI_DUMP"):
            self.state.log("bodies.jsonl", {"method": method, "path": path,
                                            "headers": dict(self.headers), "body": body})
        bare = path.split("?", 1)[0]
        if bare.startswith("/v1/"):
            bare = bare[3:]
        if method == "GET" and bare == "/models":
            self.state.log("other.jsonl", {"method": method, "path": path, "status": 200})
            return self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"}
                for m in MODELS]})
        if method == "GET" and bare.startswith("/models/"):
            self.state.log("other.jsonl", {"method": method, "path": path, "status": 200})
            return self.send_json(200, {"id": bare[len("/models/"):], "object": "model",
                                        "created": 1700000000, "owned_by": "mock"})
        if method == "POST" and bare == "/responses":
            return self.api_responses(path, body)
        if method == "POST" and bare == "/chat/completions":
            return self.api_chat(path, body)
        self.state.log("other.jsonl", {"method": method, "path": path, "status": 404})
        return self.send_json(404, {"error": {"type": "invalid_request_error",
                                              "code": "not_found",
                                              "message": f"mock: no route {method} {path}"}})

    # -- shared --------------------------------------------------------
    def housekeeping(self, body):
        """Codex's own side requests (thread title, memories, compaction): no turn."""
        if self.headers.get("x-openai-memgen-request"):
            return True
        try:
            meta = json.loads(self.headers.get("x-codex-turn-metadata") or "{}")
        except ValueError:
            meta = {}
        if meta.get("thread_source") not in (None, "user") or \
                meta.get("request_kind") not in (None, "turn"):
            return True
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema" and fmt.get("name") == "codex_output_schema" and \
                "title" in json.dumps(fmt.get("schema") or {}):
            return True
        meta = body.get("metadata")
        if isinstance(meta, dict) and any(
                k in json.dumps(meta) for k in ("compaction", "title", "thread_name", "memgen")):
            return True
        return False

    def error_reply(self, behaviour):
        """Send the error answer a ``status``/``usage_limit`` behaviour asks for; True if sent."""
        headers = behaviour.get("headers") or {}
        status = behaviour.get("status")
        if behaviour.get("usage_limit"):
            status = status or 429
            resets_in = int(behaviour.get("resets_in_seconds", 3600))
            err = {"type": "usage_limit_reached",
                   "message": "The usage limit has been reached",
                   "plan_type": behaviour.get("plan_type", "plus"),
                   "resets_at": int(time.time()) + resets_in,
                   "resets_in_seconds": resets_in}
            err.update(behaviour.get("error") or {})
            self.send_json(status, {"error": err}, headers)
            return status
        if not status or int(status) < 300:
            return None
        status = int(status)
        if behaviour.get("error"):
            err = behaviour["error"]
        elif status == 429:
            err = {"type": "rate_limit_exceeded", "code": "rate_limit_exceeded",
                   "message": "Rate limit reached for requests (mock). Please try again in 20s."}
        elif status == 503:
            err = {"type": "server_error", "code": "server_is_overloaded",
                   "message": "The server is overloaded (mock)."}
        elif status >= 500:
            err = {"type": "server_error", "code": "server_error",
                   "message": "The server had an error while processing your request (mock)."}
        else:
            err = {"type": "invalid_request_error", "code": "mock_error",
                   "message": f"mock error {status}"}
        self.send_json(status, {"error": err}, headers)
        return status

    def begin_turn(self, path, body, user_text, kind, history):
        """Pop the script, log the turn on arrival (requests.jsonl), then wait delay_s."""
        self.arrived = time.time()
        behaviour, turn = self.state.next_behaviour()
        if behaviour.get("usage_limit"):
            status = int(behaviour.get("status") or 429)
        elif behaviour.get("status") and int(behaviour["status"]) >= 300:
            status = int(behaviour["status"])
        else:
            status = 200
        self.turn_info = (turn, status, user_text)
        self.state.log("requests.jsonl", {"ts": self.arrived, "path": path, "status": status,
                                          "user_text": user_text, "turn": turn, "kind": kind,
                                          "model": body.get("model"), "history": history})
        delay = float(behaviour.get("delay_s") or 0)
        if delay > 0:
            time.sleep(delay)
        return behaviour, turn

    def log_reply(self):
        """replies.jsonl: the turn's answer went out completely (or the client left)."""
        info = getattr(self, "turn_info", None)
        if not info:
            return
        self.turn_info = None
        turn, status, user_text = info
        self.state.log("replies.jsonl", {"ts": time.time(), "turn": turn, "status": status,
                                         "arrived": self.arrived, "user_text": user_text})


    def stream_pieces(self, text, stream_s):
        if stream_s > 0:
            return mockbase.pieces(text, max(2, int(stream_s * 10)))
        return [text]

    # -- Responses API -------------------------------------------------
    def api_responses(self, path, body):
        user_text, kind = responses_user_text(body)
        if kind is None or self.housekeeping(body):
            return self.responses_housekeeping(path, body)
        try:
            return self._responses_turn(path, body, user_text, kind)
        finally:
            self.log_reply()

    def _responses_turn(self, path, body, user_text, kind):
        behaviour, turn = self.begin_turn(path, body, user_text, kind, responses_history(body))
        status = self.error_reply(behaviour)
        if status:
            return None
        model = body.get("model") or "mock-model"
        resp_id = "resp_" + uuid.uuid4().hex[:24]
        reply = behaviour.get("reply")
        if reply is None:
            reply = "ok: " + (user_text or "")
        tool = behaviour.get("tool")
        if tool and kind == "user":
            name, args = tool_call(behaviour, offered_tools(body))
            item = {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:24],
                    "call_id": "call_" + uuid.uuid4().hex[:24], "name": name,
                    "arguments": json.dumps(args), "status": "completed"}
            reply = ""
        else:
            item = None
        inp, out = usage_obj(user_text, reply)
        usage = {"input_tokens": inp, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": inp + out}
        base = {"id": resp_id, "object": "response", "created_at": int(time.time()),
                "model": model}
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        done_msg = {"type": "message", "id": msg_id, "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": reply, "annotations": []}]}
        final_item = item or done_msg
        if body.get("stream") is False:
            return self.send_json(200, dict(base, status="completed", output=[final_item],
                                             usage=usage), behaviour.get("headers"))
        self.start_sse(behaviour.get("headers"))
        seq = [0]

        def ev(kind_, data):
            data = dict(data, type=kind_, sequence_number=seq[0])
            seq[0] += 1
            self.sse(data, event=kind_)

        try:
            ev("response.created", {"response": dict(base, status="in_progress", output=[])})
            ev("response.in_progress", {"response": dict(base, status="in_progress", output=[])})
            if item:
                ev("response.output_item.added", {"output_index": 0,
                                                  "item": dict(item, arguments="",
                                                               status="in_progress")})
                ev("response.function_call_arguments.done",
                   {"output_index": 0, "item_id": item["id"], "arguments": item["arguments"]})
                ev("response.output_item.done", {"output_index": 0, "item": item})
            else:
                ev("response.output_item.added", {"output_index": 0, "item": dict(
                    done_msg, status="in_progress", content=[])})
                ev("response.content_part.added", {"output_index": 0, "item_id": msg_id,
                                                   "content_index": 0, "part": {
                                                       "type": "output_text", "text": "",
                                                       "annotations": []}})
                stream_s = float(behaviour.get("stream_s") or 0)
                parts = self.stream_pieces(reply, stream_s)
                gap = stream_s / max(1, len(parts) - 1) if len(parts) > 1 else 0
                for i, piece in enumerate(parts):
                    if i and gap:
                        time.sleep(gap)
                    ev("response.output_text.delta", {"output_index": 0, "item_id": msg_id,
                                                      "content_index": 0, "delta": piece})
                ev("response.output_text.done", {"output_index": 0, "item_id": msg_id,
                                                 "content_index": 0, "text": reply})
                ev("response.content_part.done", {"output_index": 0, "item_id": msg_id,
                                                  "content_index": 0, "part": {
                                                      "type": "output_text", "text": reply,
                                                      "annotations": []}})
                ev("response.output_item.done", {"output_index": 0, "item": done_msg})
            ev("response.completed", {"response": dict(base, status="completed",
                                                       output=[final_item], usage=usage)})
            self.end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (an interrupted turn)

    def responses_housekeeping(self, path, body):
        """A request that is no model turn (title, compaction, warm-up): a short answer."""
        self.state.log("other.jsonl", {"method": "POST", "path": path, "status": 200,
                                       "note": "responses-housekeeping"})
        text = "Mock title"
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            props = (fmt.get("schema") or {}).get("properties") or {}
            text = json.dumps({k: "Mock title" for k in props} or {"title": "Mock title"})
        resp_id = "resp_" + uuid.uuid4().hex[:24]
        item = {"type": "message", "id": "msg_" + uuid.uuid4().hex[:24], "status": "completed",
                "role": "assistant", "content": [{"type": "output_text", "text": text,
                                                  "annotations": []}]}
        usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 2}
        base = {"id": resp_id, "object": "response", "created_at": int(time.time()),
                "model": body.get("model") or "mock-model"}
        if body.get("stream") is False:
            return self.send_json(200, dict(base, status="completed", output=[item], usage=usage))
        self.start_sse()
        self.sse({"type": "response.created", "response": dict(base, status="in_progress")},
                 event="response.created")
        self.sse({"type": "response.output_item.done", "output_index": 0, "item": item},
                 event="response.output_item.done")
        self.sse({"type": "response.completed", "response": dict(
            base, status="completed", output=[item], usage=usage)}, event="response.completed")
        self.end_chunks()

    # -- Chat Completions ----------------------------------------------
    def api_chat(self, path, body):
        user_text, kind = chat_user_text(body)
        if kind is None:
            self.state.log("other.jsonl", {"method": "POST", "path": path, "status": 400})
            return self.send_json(400, {"error": {"type": "invalid_request_error",
                                                  "message": "messages is required"}})
        try:
            return self._chat_turn(path, body, user_text, kind)
        finally:
            self.log_reply()

    def _chat_turn(self, path, body, user_text, kind):
        behaviour, turn = self.begin_turn(path, body, user_text, kind, chat_history(body))
        status = self.error_reply(behaviour)
        if status:
            return None
        model = body.get("model") or "mock-model"
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        reply = behaviour.get("reply")
        if reply is None:
            reply = "ok: " + (user_text or "")
        tool_calls = None
        if behaviour.get("tool") and kind == "user":
            name, args = tool_call(behaviour, offered_tools(body))
            tool_calls = [{"index": 0, "id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                           "function": {"name": name, "arguments": json.dumps(args)}}]
            reply = None
        inp, out = usage_obj(user_text, reply or "")
        usage = {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}
        finish = "tool_calls" if tool_calls else "stop"
        if not body.get("stream"):
            msg = {"role": "assistant", "content": reply}
            if tool_calls:
                msg["tool_calls"] = [{k: v for k, v in c.items() if k != "index"}
                                     for c in tool_calls]
            return self.send_json(200, {"id": cid, "object": "chat.completion",
                                        "created": created, "model": model,
                                        "choices": [{"index": 0, "message": msg,
                                                     "finish_reason": finish}],
                                        "usage": usage}, behaviour.get("headers"))
        self.start_sse(behaviour.get("headers"))

        def chunk(delta, finish_reason=None, extra=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": finish_reason}]}
            if extra:
                obj.update(extra)
            self.sse(obj)

        try:
            chunk({"role": "assistant", "content": ""})
            if tool_calls:
                chunk({"tool_calls": tool_calls})
            else:
                stream_s = float(behaviour.get("stream_s") or 0)
                parts = self.stream_pieces(reply, stream_s)
                gap = stream_s / max(1, len(parts) - 1) if len(parts) > 1 else 0
                for i, piece in enumerate(parts):
                    if i and gap:
                        time.sleep(gap)
                    chunk({"content": piece})
            chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                self.sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                          "model": model, "choices": [], "usage": usage})
            self.sse("[DONE]")
            self.end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            pass


if __name__ == "__main__":
    sys.exit(mockbase.serve(OpenAIHandler))
