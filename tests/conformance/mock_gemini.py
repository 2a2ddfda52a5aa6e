"""Mock of the Gemini API (generativelanguage v1beta) for the real Gemini CLI.

Built on mockbase (read its docstring for the script and the logs). Point the
CLI here with ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:<port>`` (Gemini CLI
0.61.0 reads it in ``createContentGenerator``; with ``security.auth.selectedType
= "gemini-api-key"`` and any ``GEMINI_API_KEY``).

Routes (``<model>`` is whatever the CLI asks for, the mock never checks it):

- ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse`` -- server-sent
  events, one ``GenerateContentResponse`` per event, the last with
  ``finishReason: STOP`` and ``usageMetadata``.
- ``POST /v1beta/models/<model>:generateContent`` -- one JSON response.
- ``POST /v1beta/models/<model>:countTokens`` -- ``{"totalTokens": n}``.
- ``POST ...:embedContent`` / ``:batchEmbedContents``, ``GET /v1beta/models``.

Which requests are model turns (Gemini CLI 0.61.0). The main chat (LlmRole
MAIN, ``GeminiChat.sendMessageStream``) is the only caller that streams with the
full tool list; every helper goes through ``BaseLlmClient.generateJson`` /
``generateContent`` and therefore uses the NON-streaming ``:generateContent``:

- next-speaker check (``checkNextSpeaker``): JSON schema with ``next_speaker``;
  its last user part is the fixed CHECK_PROMPT ("Analyze *only* the content ...").
- loop detection (``LoopDetectionService``): systemInstruction
  LOOP_DETECTION_SYSTEM_PROMPT, schema with ``unproductive_state_confidence``.
- model router / classifier (the default ``auto`` model; seen on every turn,
  before it, as ``gemini-3.5-flash-lite:generateContent``): systemInstruction
  "You are a specialized Task Routing AI", schema ``complexity_reasoning`` /
  ``complexity_score`` (older builds: ``model_choice``).
- session summary / title (promptId ``session-summary-generation``): a single
  user part starting "Summarize the user's primary intent".
- history compression, edit correction, web-fetch fallbacks: other prompts.

So: ``:streamGenerateContent`` whose body carries ``tools`` = a model turn, logged
to requests.jsonl; everything else (a stream without tools included) goes to
other.jsonl with a ``kind`` (count_tokens, router, next_speaker,
loop_detection, session_summary, json:<fields>, generate, ...). Seen with the
seeded profile: one ``router`` per turn, a ``session_summary`` on
``--list-sessions``; no next-speaker check (``model.skipNextSpeakerCheck``
defaults to true in 0.61) and no loop check in short sessions.
Set ``MOCK_GEMINI_BODIES=1`` to log every request body to bodies.jsonl. The answer
to a helper is schema-driven: ``next_speaker`` is always "user" (so the CLI never
asks for another turn on its own), ``unproductive_state_confidence`` 0, a
router's ``model_choice`` the first enum value, a summary "mock session".

Logs (as mock_anthropic): each model turn appends ``{"ts", "path",
"status", "user_text", "turn", "history"}`` to requests.jsonl when it
arrives (before ``delay_s``), ``history`` being the texts of the earlier
user contents of the request (a resumed chat carries them); when its
answer's last byte went out (or the client went away) it appends ``{"ts",
"turn", "status", "arrived", "user_text"}`` to replies.jsonl (the kit's
``burst``, ``ready_after_turn`` and ``resume`` cases read both).

``user_text`` is the text of the newest user content that holds text. After a
tool ran, the newest user content is a ``functionResponse``: ``user_text`` is
then "" and ``function_response`` names the tool, so a tool's follow-up turn is
told apart from a new prompt.

Behaviours (mockbase keys plus):

- ``status``: 429 -> a google.rpc RESOURCE_EXHAUSTED body; 500 -> INTERNAL,
  503 -> UNAVAILABLE; ``error_message`` overrides the message. What 0.61.0
  does with them (``classifyGoogleError`` + ``retryWithBackoff``, verified):

  * plain 429 (no details), 500, 503: retryable. 10 attempts, 5 s doubling to
    30 s (about 3.5 min), then the fallback handler; with the default
    ``ui.errorVerbosity: "low"`` it answers "retry_once" silently and the loop
    starts over: the turn stays busy for ever ("Thinking... (esc to cancel,
    12m 5s)"), no error is ever shown. Use a queue of a few errors, then a
    reply, to see a retry; Esc ends it.
  * ``retry_delay`` (e.g. "7200s") adds a RetryInfo; above 300 s the error is
    terminal: the usage-limit dialog "Usage limit reached for all Pro
    models." / "Access resets at 5:07 AM UTC." / "1. Keep trying" "2. Stop".
    "Stop" then prints "[API Error: You exceeded your current quota, ...
    Suggested retry after 7200s.]". At or below 300 s it is retried.
  * ``quota: "daily"`` adds a QuotaFailure with quotaId
    "GenerateRequestsPerDayPerProjectPerModel-FreeTier": terminal, the same
    dialog WITHOUT "Access resets at"; "Stop" prints "[API Error: You have
    exhausted your daily quota on this model.]".
  * ``quota: "minute"``: a PerMinute QuotaFailure (retried after 60 s; from
    the source, not run).
  * ``quota: "capacity"``: ErrorInfo MODEL_CAPACITY_EXHAUSTED: 3 tries (1 s,
    3 s apart), then with ``ui.errorVerbosity: "full"`` the dialog "We are
    currently experiencing high demand for all Pro models." (verified); with
    the default "low" the fallback handler retries silently (from the
    source: ``errorVerbosity === "low" && isCapacityExceeded`` ->
    "retry_once").
- ``tool``: "shell" (or "run_shell_command") -> a ``functionCall`` of
  ``run_shell_command`` with ``{"command": "touch muxvisor-tool-ran.txt", ...}``
  (``tool_command`` overrides it); the CLI shows "Allow execution of [Shell]?"
  with "1. Allow once". Not ``echo``: 0.61 runs commands from its built-in
  safe list (echo, ls, cat, pwd, ...) without asking. "write_file" -> a write
  of ``mock-tool.txt`` in the cwd (an edit confirmation; not run here). Any other string is sent as the function name with
  ``tool_args`` (an object) as its arguments.
- ``thought``: text of a thought part sent before the answer.
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mockbase  # noqa: E402

MODEL_VERSION = "gemini-mock-001"


def _texts(content):
    """The text parts of a content, without the CLI's own context parts
    (``<session_context>`` ... sent in the first user content of a session)."""
    out = []
    for p in (content or {}).get("parts") or []:
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought"):
            t = p["text"]
            if t.lstrip().startswith("<session_context>"):
                continue
            out.append(t)
    return out


def newest_user(body):
    """(text of the newest user content holding text, name of a trailing functionResponse or None)."""
    contents = body.get("contents") or []
    fn = None
    if contents:
        last = contents[-1]
        for p in last.get("parts") or []:
            if isinstance(p, dict) and "functionResponse" in p:
                fn = (p["functionResponse"] or {}).get("name") or "?"
        if fn is not None:
            return "", fn
    for c in reversed(contents):
        if c.get("role", "user") == "user":
            t = _texts(c)
            if t:
                return "".join(t), None
    return "", fn


def user_history(body):
    """Texts of the user contents before the newest one holding text."""
    texts = []
    for c in body.get("contents") or []:
        if c.get("role", "user") == "user":
            t = "".join(_texts(c))
            if t:
                texts.append(t)
    _, fn = newest_user(body)
    return texts if fn else texts[:-1]


def schema_of(body):
    gc = body.get("generationConfig") or {}
    return gc.get("responseJsonSchema") or gc.get("responseSchema")


def kind_of(path, body):
    """Name what a request is (see the module docstring)."""
    if ":countTokens" in path:
        return "count_tokens"
    if "mbed" in path:
        return "embed"
    if ":streamGenerateContent" in path and body.get("tools"):
        return "turn"
    schema = schema_of(body) or {}
    props = schema.get("properties") or {}
    if "next_speaker" in props:
        return "next_speaker"
    if "unproductive_state_confidence" in props:
        return "loop_detection"
    if "model_choice" in props or "complexity_reasoning" in props:
        return "router"
    text, _ = newest_user(body)
    if text.startswith("Summarize the user's primary intent"):
        return "session_summary"
    if props:
        return "json:" + ",".join(sorted(props))[:60]
    if ":streamGenerateContent" in path:
        return "stream_without_tools"
    return "generate"


def fill(schema):
    """A minimal value satisfying a JSON schema (helpers' answers)."""
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    if isinstance(t, list):
        t = t[0] if t else None
    t = (t or "").lower()
    if "enum" in schema and schema["enum"]:
        e = schema["enum"]
        return "user" if "user" in e else e[0]
    if t == "object" or "properties" in schema:
        out = {}
        for k, v in (schema.get("properties") or {}).items():
            if k == "next_speaker":
                out[k] = "user"
            elif k.endswith("confidence"):
                out[k] = 0
            else:
                out[k] = fill(v)
        return out
    if t == "array":
        return []
    if t in ("number", "integer"):
        return 0
    if t == "boolean":
        return False
    return "mock"


def rpc_error(code, behaviour):
    status_names = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
    name = status_names.get(code, "UNKNOWN")
    details = []
    quota = behaviour.get("quota")
    if code == 429:
        msg = behaviour.get("error_message") or (
            "You exceeded your current quota, please check your plan and billing details. "
            "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
        )
        if quota == "daily":
            details.append({
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-mock"},
                    "quotaValue": "250",
                }],
            })
        elif quota == "minute":
            details.append({
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaValue": "10",
                }],
            })
        elif quota == "capacity":
            msg = behaviour.get("error_message") or "No capacity available for model gemini-mock on the server"
            details.append({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "MODEL_CAPACITY_EXHAUSTED",
                "domain": "generativelanguage.googleapis.com",
                "metadata": {"model": "gemini-mock"},
            })
        if details:
            details.append({"@type": "type.googleapis.com/google.rpc.Help",
                            "links": [{"description": "Learn more about Gemini API quotas",
                                       "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]})
        if behaviour.get("retry_delay"):
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": behaviour["retry_delay"]})
    elif code == 503:
        msg = behaviour.get("error_message") or "The model is overloaded. Please try again later."
    elif code == 500:
        msg = behaviour.get("error_message") or "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
    else:
        msg = behaviour.get("error_message") or name
    return {"error": {"code": code, "message": msg, "status": name, "details": details}}


def tool_call(behaviour):
    tool = behaviour.get("tool")
    if tool in (True, "shell", "run_shell_command", "bash"):
        return {"name": "run_shell_command",
                "args": {"command": behaviour.get("tool_command") or "touch muxvisor-tool-ran.txt",
                         "description": "Create an empty marker file in the working directory."}}
    if tool in ("write_file", "write"):
        return {"name": "write_file",
                "args": {"file_path": behaviour.get("tool_path") or "mock-tool.txt",
                         "content": "written by the mock\n"}}
    return {"name": str(tool), "args": behaviour.get("tool_args") or {}}


USAGE = {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17}


def response(parts, finish=True):
    cand = {"content": {"role": "model", "parts": parts}, "index": 0}
    out = {"candidates": [cand], "modelVersion": MODEL_VERSION, "responseId": "mock"}
    if finish:
        cand["finishReason"] = "STOP"
        out["usageMetadata"] = USAGE
    return out


class GeminiHandler(mockbase.Handler):
    def route(self, method, path, body):
        if os.environ.get("MOCK_GEMINI_BODIES"):
            self.state.log("bodies.jsonl", {"method": method, "path": path, "body": body})
        if method == "GET":
            if re.search(r"/models/?(\?|$)", path):
                return self.send_json(200, {"models": [{"name": "models/gemini-2.5-pro"},
                                                       {"name": "models/gemini-2.5-flash"}]})
            self.state.log("other.jsonl", {"method": method, "path": path, "kind": "get"})
            return self.send_json(404, rpc_error(404, {}))
        kind = kind_of(path, body)
        if kind == "count_tokens":
            n = max(1, len(json.dumps(body)) // 4)
            self.state.log("other.jsonl", {"path": path, "kind": kind, "status": 200})
            return self.send_json(200, {"totalTokens": n})
        if kind == "embed":
            self.state.log("other.jsonl", {"path": path, "kind": kind, "status": 200})
            return self.send_json(200, {"embedding": {"values": [0.0] * 8}})
        if kind != "turn":
            return self.helper(path, body, kind)
        return self.turn(path, body)

    def helper(self, path, body, kind):
        text, fn = newest_user(body)
        schema = schema_of(body)
        if schema:
            answer = json.dumps(fill(schema))
        elif kind == "session_summary":
            answer = "mock session"
        else:
            answer = "ok"
        self.state.log("other.jsonl", {"path": path, "kind": kind, "status": 200,
                                       "user_text": text[:200]})
        obj = response([{"text": answer}])
        if ":streamGenerateContent" in path:
            self.start_sse()
            self.sse(obj)
            return self.end_chunks()
        return self.send_json(200, obj)

    def turn(self, path, body):
        arrived = time.time()
        behaviour, turn = self.state.next_behaviour()
        text, fn = newest_user(body)
        status = int(behaviour.get("status") or 200)
        record = {"ts": arrived, "path": path, "status": status, "user_text": text, "turn": turn,
                  "history": user_history(body)}
        if fn:
            record["function_response"] = fn
        self.state.log("requests.jsonl", record)
        try:
            return self._answer(path, behaviour, text, fn, status)
        finally:
            self.state.log("replies.jsonl", {"ts": time.time(), "turn": turn, "status": status,
                                             "arrived": arrived, "user_text": text})

    def _answer(self, path, behaviour, text, fn, status):
        if behaviour.get("delay_s"):
            time.sleep(float(behaviour["delay_s"]))
        headers = behaviour.get("headers") or {}
        if status != 200:
            return self.send_json(status, rpc_error(status, behaviour), headers)
        reply = behaviour.get("reply")
        if reply is None:
            reply = "ok: " + text if not fn else "done: " + fn
        parts_seq = []
        if behaviour.get("thought"):
            parts_seq.append([{"text": behaviour["thought"], "thought": True}])
        stream_s = float(behaviour.get("stream_s") or 0)
        n = max(1, int(stream_s * 4)) if stream_s else 1
        for piece in mockbase.pieces(reply, n):
            if piece:
                parts_seq.append([{"text": piece}])
        if behaviour.get("tool"):
            parts_seq.append([{"functionCall": tool_call(behaviour)}])
        if ":streamGenerateContent" not in path:
            flat = [p for ps in parts_seq for p in ps]
            return self.send_json(200, response(flat), headers)
        self.start_sse(headers)
        gap = stream_s / max(1, len(parts_seq) - 1) if stream_s and len(parts_seq) > 1 else 0
        for i, ps in enumerate(parts_seq):
            last = i == len(parts_seq) - 1
            self.sse(response(ps, finish=last))
            if not last and gap:
                time.sleep(gap)
        if not parts_seq:
            self.sse(response([{"text": ""}]))
        self.end_chunks()


if __name__ == "__main__":
    sys.exit(mockbase.serve(GeminiHandler))
