"""Conformance profile: OpenAI Codex CLI 0.171.0 (npm ``@openai/codex``), offline.

Codex ignores ``OPENAI_BASE_URL``; it is pointed at ``mock_openai.py`` by a
model provider in ``$CODEX_HOME/config.toml`` (``wire_api = "responses"``:
0.171 rejects ``"chat"`` with "`wire_api = "chat"` is no longer
supported"). See ``prepare_home`` for the exact files.

Interface used by the conformance runner:
  NAME, VERSION, PRESET, MOCK
  install(cache_dir) -> binary path          (idempotent npm install)
  find(cache_dir) -> binary path or None
  prepare_home(home, workdir, mock_port, seed=True) -> env dict for the peer
  argv(binary) -> program argv for ``muxvisor add ID --agent codex -- <argv>``
  hooks_settings(muxvisor_path) -> dict describing the hook recipe
  session_id(home) -> newest session id or None
"""

import glob
import json
import os
import re
import subprocess

NAME = "codex"
VERSION = "0.171.0"
PRESET = "codex"
MOCK = "mock_openai.py"

PACKAGE = "@openai/codex"
MODEL = "gpt-5-codex"
PROVIDER = "mock"
API_KEY_ENV = "MOCK_OPENAI_API_KEY"
API_KEY = "sk-mock-muxvisor-conformance"


def _prefix(cache_dir):
    return os.path.join(cache_dir, f"codex-{VERSION}")


def find(cache_dir):
    """The npm launcher (node script) of the pinned version, or None."""
    path = os.path.join(_prefix(cache_dir), "node_modules", ".bin", "codex")
    if os.path.exists(path) and os.access(path, os.X_OK):
        return path
    return None


def native_binary(cache_dir):
    """The platform binary the launcher runs (for process inspection)."""
    pats = glob.glob(os.path.join(_prefix(cache_dir), "node_modules", "@openai",
                                  "codex-*", "vendor", "*", "bin", "codex"))
    return pats[0] if pats else None


def install(cache_dir):
    found = find(cache_dir)
    if found:
        return found
    prefix = _prefix(cache_dir)
    os.makedirs(prefix, exist_ok=True)
    subprocess.run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund",
                    f"{PACKAGE}@{VERSION}"], check=True, stdout=subprocess.DEVNULL)
    found = find(cache_dir)
    if not found:
        raise RuntimeError(f"npm installed {PACKAGE}@{VERSION} but no codex launcher in {prefix}")
    return found


def _toml_str(s):
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string


def config_toml(home, workdir, mock_port, seed=True, daemon=True, status_line=False,
                notify=None):
    """The text of $CODEX_HOME/config.toml.

    seed=True: a custom provider ``mock`` (no login), ``workdir`` trusted.
    seed=False: only ``openai_base_url`` -> the mock, the built-in OpenAI
    provider: no auth.json, so Codex shows its sign-in picker (API key entry
    under "Sign in another way"), and for a git repository workdir the
    "Trust this folder?" question.
    status_line=True adds ``[tui] status_line`` with ``run-state`` (``Ready`` /
    ``Working`` / ``Thinking``) and ``thread-id`` (the session id) to the
    footer. notify: a program path for ``notify`` (called with one JSON
    argument on ``agent-turn-complete``).
    """
    base_url = f"http://127.0.0.1:{mock_port}/v1"
    top = [
        "# written by tests/conformance/cli_codex.py",
        f"model = {_toml_str(MODEL)}",
    ]
    if seed:
        top.append(f"model_provider = {_toml_str(PROVIDER)}")
    else:
        top.append(f"openai_base_url = {_toml_str(base_url)}")
    # no network beyond the mock: no update check, no analytics, no feedback
    top.append("check_for_update_on_startup = false")
    if notify:
        top.append(f"notify = [{_toml_str(notify)}]")
    tables = ["[analytics]", "enabled = false", "", "[feedback]", "enabled = false", ""]
    if not daemon:
        tables += ["[features]", "daemon_auto_start = false", ""]
    if status_line:
        tables += ["[tui]",
                   'status_line = ["model-with-reasoning", "current-dir", "run-state", "thread-id"]',
                   ""]
    if seed:
        tables += [
            f"[model_providers.{PROVIDER}]",
            'name = "muxvisor mock"',
            f"base_url = {_toml_str(base_url)}",
            'wire_api = "responses"',
            f"env_key = {_toml_str(API_KEY_ENV)}",
            "request_max_retries = 1",
            "stream_max_retries = 1",
            "",
            f"[projects.{_toml_str(os.path.realpath(workdir))}]",
            'trust_level = "trusted"',
            "",
        ]
    return "\n".join(top) + "\n\n" + "\n".join(tables)


def prepare_home(home, workdir, mock_port, seed=True, daemon=True, status_line=False,
                 notify=None):
    """Write $HOME/.codex/config.toml; return the env the peer needs.

    seed=True: Codex starts straight at its prompt (``› Ask Codex to do
    anything``) with the API key from MOCK_OPENAI_API_KEY. seed=False: the
    minimum that still points at the mock; first-start screens show (sign-in
    picker ~1 s after start, or ~10 s with the daemon in a fresh HOME; then
    the trust question for a git repository). A key typed into the API-key
    screen is saved to $CODEX_HOME/auth.json (``{"auth_mode": "apikey",
    "OPENAI_API_KEY": ...}``) and used against the mock.
    """
    codex_home = os.path.join(home, ".codex")
    os.makedirs(codex_home, exist_ok=True)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(config_toml(home, workdir, mock_port, seed, daemon, status_line, notify))
    env = {
        "HOME": home,
        "CODEX_HOME": codex_home,
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        # belt and braces: anything but 127.0.0.1 goes to a dead proxy
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if seed:
        env[API_KEY_ENV] = API_KEY
    return env


def argv(binary, hooks=False):
    """Program argv. hooks=True adds the flag that lets untrusted hooks run."""
    return [binary] + (list(HOOK_ARGS) if hooks else [])


def resume_argv(binary, session, hooks=False):
    """``codex resume <id>`` reopens that session's transcript (verified)."""
    return argv(binary, hooks) + ["resume", session]


# Codex runs a user hook only once a person trusted its exact definition
# (/hooks, stored as a hash in config.toml); an untrusted hook is skipped
# with a startup warning. This flag runs them anyway for one invocation;
# it also makes the TUI use an embedded app-server (no daemon).
HOOK_ARGS = ("--dangerously-bypass-hook-trust",)


def hooks_settings(muxvisor_path):
    """The hook recipe, verified on 0.171.0: write ``hooks_json`` to
    ``$CODEX_HOME/hooks.json`` (``install_hooks``) and start Codex with
    ``argv(binary, hooks=True)``.

    UserPromptSubmit -> busy, Stop -> ready, PermissionRequest -> blocked
    (permission), PostToolUse -> busy. Payloads carry ``session_id`` (the
    thread id, also the resume id), so ``--hook-json`` records it.
    SessionStart is left out: it fires only when the first prompt is
    submitted (not at TUI start), 40 ms before UserPromptSubmit. The
    mark's stdout goes to /dev/null so Codex never reads it as hook output.
    Hooks run in the process that runs turns: the embedded app-server of the
    TUI (with the flag), else the shared daemon, whose environment is that
    of the TUI that started it.
    """
    def cmd(state, extra=""):
        return (f'[ -z "$MUXVISOR_IDENTITY" ] || {muxvisor_path} mark "$MUXVISOR_IDENTITY" '
                f"{state} --hook-json{extra} >/dev/null 2>&1")

    def entry(command):
        return [{"hooks": [{"type": "command", "command": command}]}]

    hooks = {"hooks": {
        "UserPromptSubmit": entry(cmd("busy")),
        "Stop": entry(cmd("ready")),
        "PermissionRequest": entry(cmd("blocked", " --reason permission")),
        "PostToolUse": entry(cmd("busy")),
    }}
    return {
        "hooks_json": hooks,
        "file": "hooks.json",  # relative to CODEX_HOME
        "argv_extra": list(HOOK_ARGS),
        # notify (legacy, no trust needed) fires only on agent-turn-complete,
        # also for Codex's own thread-title side request: not a busy signal.
        "notify_note": "notify = [prog]: one JSON arg, type agent-turn-complete",
    }


def install_hooks(home, muxvisor_path):
    settings = hooks_settings(muxvisor_path)
    path = os.path.join(home, ".codex", settings["file"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(settings["hooks_json"], f, indent=2)
    return path


_UUID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$")


def session_id(home):
    """Id of the newest session of this HOME, for ``codex resume <id>``.

    Codex writes ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<local time>-<uuid>.jsonl``
    once the first prompt is submitted (not at start: a session with no
    turn cannot be resumed), and appends ``{"id", "thread_name",
    "updated_at"}`` to ``$CODEX_HOME/session_index.jsonl``. Codex's own
    thread-title request does not create a session file. Other sources of
    the same id: the hooks' ``session_id``, notify's ``thread-id``, the
    ``thread-id`` status-line item, ``/status``.
    """
    codex_home = os.path.join(home, ".codex")
    newest = None
    try:
        with open(os.path.join(codex_home, "session_index.jsonl")) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("id") and (newest is None or rec.get("updated_at", "") >= newest[0]):
                    newest = (rec.get("updated_at", ""), rec["id"])
    except OSError:
        pass
    if newest:
        return newest[1]
    files = glob.glob(os.path.join(codex_home, "sessions", "*", "*", "*", "rollout-*.jsonl"))
    if not files:
        return None
    m = _UUID.search(max(files, key=os.path.getmtime))
    return m.group(1) if m else None


def daemon_pids(home):
    """Pids of the app-server daemon and its updater for this HOME (alive ones)."""
    out = []
    d = os.path.join(home, ".codex", "app-server-daemon")
    for name in ("daemon.pid", "daemon-updater.pid"):
        try:
            with open(os.path.join(d, name)) as f:
                pid = int(json.load(f)["pid"])
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if f"CODEX_HOME={os.path.join(home, '.codex')}".encode() in env:
            out.append(pid)
    return out


def cleanup(home, grace=3.0):
    """End the daemon processes of this HOME (SIGTERM, then SIGKILL)."""
    import signal
    import time
    pids = daemon_pids(home)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + grace
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") and
                                         not _zombie(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if os.path.exists(f"/proc/{pid}") and not _zombie(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return pids


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def tool_marker(workdir):
    """The file mock_openai's default shell tool call (``touch
    muxvisor-tool-probe``) creates once approved (for kit.py's permission
    case; without it the case could not tell whether the tool ran)."""
    return os.path.join(workdir, "muxvisor-tool-probe")
