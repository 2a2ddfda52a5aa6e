"""Conformance profile: Gemini CLI (npm @google/gemini-cli), pinned.

Offline set-up, verified with 0.61.0 against mock_gemini.py on 127.0.0.1:

- ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:<port>`` is the base URL of the
  GenAI SDK (``createContentGenerator`` in core: the env var is read when
  ``contentGeneratorConfig.baseUrl`` is unset; it is validated with
  ``new URL``). The SDK then calls ``<base>/v1beta/models/<model>:...``.
- Auth: ``security.auth.selectedType = "gemini-api-key"`` in settings.json and
  ``GEMINI_API_KEY`` (any value). Without a selected type, the env decides
  (``getAuthTypeFromEnv``): GOOGLE_GEMINI_BASE_URL alone means "gateway",
  GEMINI_API_KEY alone means "gemini-api-key".
- Trust: ``~/.gemini/trustedFolders.json`` ``{"<workdir>": "TRUST_FOLDER"}``
  (folder trust is on by default: ``security.folderTrust.enabled`` true).
- Nothing else is contacted with this settings.json: auto-update and its
  notification off, usage statistics (Clearcut) off, telemetry off, IDE
  integration off. The relaunch wrapper (``gemini.js`` re-spawns itself with a
  bigger heap) is kept: that is how users run it.

Every turn costs two requests: a router call (``auto`` model: the classifier
on ``gemini-3.5-flash-lite:generateContent`` with a ``complexity_score`` JSON
schema) and the turn itself (``gemini-3.1-pro-preview:streamGenerateContent``).
The next-speaker check is off by default (``model.skipNextSpeakerCheck``).

Sessions: ``--session-id <uuid>`` starts a new session under that id (the
chat is recorded as ``~/.gemini/tmp/<project>/chats/session-<date>-<id8>.jsonl``)
and ``--resume <uuid|index|latest>`` resumes one. Hooks (0.61 has them:
``hooks`` in settings.json, events BeforeAgent, AfterAgent, Notification,
BeforeTool, AfterTool, SessionStart, SessionEnd, ...) get the payload on stdin
with ``session_id``; see :func:`hooks_settings`.
"""

import json
import os
import shutil
import subprocess

NAME = "gemini"
VERSION = "0.61.0"
PRESET = "gemini"
MOCK = "mock_gemini.py"
PACKAGE = "@google/gemini-cli"

# Where the session id goes (muxvisor's gemini preset uses the same).
SESSION_FRESH_ARGV = ["--session-id", "{session_id}"]
SESSION_RESUME_ARGV = ["--resume", "{session_id}"]


def _prefix(cache_dir):
    return os.path.join(cache_dir, f"{NAME}-{VERSION}")


def find(cache_dir):
    """The installed binary, or None."""
    path = os.path.join(_prefix(cache_dir), "node_modules", ".bin", "gemini")
    pkg = os.path.join(_prefix(cache_dir), "node_modules", "@google", "gemini-cli", "package.json")
    try:
        with open(pkg) as f:
            if json.load(f).get("version") != VERSION:
                return None
    except (OSError, ValueError):
        return None
    return path if os.access(path, os.X_OK) else None


def install(cache_dir):
    """Install the pinned version under cache_dir (idempotent); the binary path."""
    found = find(cache_dir)
    if found:
        return found
    prefix = _prefix(cache_dir)
    os.makedirs(prefix, exist_ok=True)
    npm = shutil.which("npm") or "npm"
    subprocess.run(
        [npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", f"{PACKAGE}@{VERSION}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    found = find(cache_dir)
    if not found:
        raise RuntimeError(f"npm installed {PACKAGE}@{VERSION} but no binary under {prefix}")
    return found


def _quiet_settings():
    """Settings that keep the CLI off the network (besides the model API)."""
    return {
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "ide": {"enabled": False, "hasSeenNudge": True},
    }


def _write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def prepare_home(home, workdir, mock_port, seed=True, hooks=None):
    """Make HOME for one peer; return the env vars to give it.

    seed=True: straight to the prompt (auth chosen, key in the env, workdir
    trusted). seed=False: still pointed at the mock (base URL in the env, the
    quiet settings), but no auth type, no key and no trust, so the first-start
    screens show: "How would you like to authenticate for this project?", then
    "Enter Gemini API Key" (after choosing "Use Gemini API Key"), then "Do you
    trust the files in this folder?". ``hooks``: a dict from
    :func:`hooks_settings` merged into settings.json.
    """
    gdir = os.path.join(home, ".gemini")
    os.makedirs(gdir, exist_ok=True)
    settings = _quiet_settings()
    if seed:
        settings["security"] = {"auth": {"selectedType": "gemini-api-key"}}
        _write_json(
            os.path.join(gdir, "trustedFolders.json"),
            {os.path.realpath(workdir): "TRUST_FOLDER"},
        )
    if hooks:
        settings.update(hooks)
    _write_json(os.path.join(gdir, "settings.json"), settings)
    env = {
        "HOME": home,
        "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "TERM": "xterm-256color",
        "NO_BROWSER": "true",  # never open a browser for a login
    }
    if seed:
        env["GEMINI_API_KEY"] = "mock-gemini-key"
    return env


def argv(binary):
    """The command muxvisor runs (the gemini preset appends --session-id)."""
    return [binary]


def resume_argv(binary, session_id):
    return [binary, "--resume", session_id]


def hooks_settings(muxvisor_path):
    """settings.json fragment: Gemini CLI 0.61 hooks that call ``muxvisor mark``.

    BeforeAgent fires once a prompt is submitted, AfterAgent once the turn
    (all its model calls and tools) is over, Notification with
    notification_type ToolPermission when a tool confirmation shows. The
    payload (stdin) has session_id, so ``--hook-json`` stores it. A hook's
    stdout is parsed by the CLI (plain text becomes a systemMessage) and a
    non-zero exit is a warning or a block: hence ``>/dev/null 2>&1 || true``.
    """
    mv = muxvisor_path.replace('"', '\\"')

    def cmd(state, extra=""):
        return (
            f'[ -z "$MUXVISOR_IDENTITY" ] || "{mv}" mark "$MUXVISOR_IDENTITY" {state}{extra} '
            f"--hook-json >/dev/null 2>&1 || true"
        )

    def hook(name, command):
        return [{"hooks": [{"type": "command", "name": name, "command": command, "timeout": 10000}]}]

    return {
        "hooksConfig": {"enabled": True, "notifications": False},
        "hooks": {
            "BeforeAgent": hook("muxvisor-busy", cmd("busy")),
            "AfterAgent": hook("muxvisor-ready", cmd("ready")),
            # 0.61 fires Notification only for a tool confirmation
            # (notification_type ToolPermission); a matcher is not applied
            # to it (no tool name or trigger in its context).
            "Notification": hook("muxvisor-blocked", cmd("blocked", " --reason permission")),
            "AfterTool": hook("muxvisor-busy", cmd("busy")),
        },
    }


# -- kit options (see kit.py) -------------------------------------------------
# Added for kit.py: without them the kit's defaults asked mock_gemini for a
# function "Bash" (no such tool in Gemini CLI: no permission prompt ever
# showed) and for a "usage_limit" behaviour mock_gemini does not know (a
# plain 200 reply): the permission and usage_limit cases tested nothing.

# "Allow execution of [Shell]?" with "1. Allow once" focused: Enter allows.
TOOL_BEHAVIOUR = {"tool": "shell", "reply": "I will run a command."}
APPROVE_KEYS = ["Enter"]


def tool_marker(workdir):
    """The file mock_gemini's default shell call creates once allowed."""
    return os.path.join(workdir, "muxvisor-tool-ran.txt")


def USAGE_LIMIT_BEHAVIOUR():
    """A 429 with a RetryInfo above 300 s: terminal in 0.61.0, the dialog
    "Usage limit reached for all Pro models." / "Access resets at ..."."""
    return {"status": 429, "retry_delay": "7200s"}


def install_hooks(home, muxvisor_path):
    """Merge hooks_settings into ~/.gemini/settings.json (for kit --hooks)."""
    path = os.path.join(home, ".gemini", "settings.json")
    try:
        with open(path) as f:
            settings = json.load(f)
    except (OSError, ValueError):
        settings = _quiet_settings()
    settings.update(hooks_settings(muxvisor_path))
    _write_json(path, settings)
    return path
