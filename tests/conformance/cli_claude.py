"""Conformance profile: Claude Code (npm @anthropic-ai/claude-code), for kit.py.

The interface every ``cli_<name>.py`` profile offers is described in
kit.py's docstring. This one drives the real Claude Code CLI against
mock_anthropic.py; it never lets it reach a vendor: every environment it
returns points ``ANTHROPIC_BASE_URL`` at the mock on 127.0.0.1, uses a dummy
``ANTHROPIC_AUTH_TOKEN`` (never ``ANTHROPIC_API_KEY``, which on a fresh HOME
makes the CLI check connectivity with the vendor), and turns off
non-essential traffic and the auto-updater.

Findings for 2.1.332 (Linux x64, tmux 3.3a) that shaped this profile:

- The npm package's ``bin/claude.exe`` is the native (Bun) binary itself
  (hard-linked from ``@anthropic-ai/claude-code-linux-x64``); it runs with
  Node 20 although the package asks for Node >= 22 (npm only warns).
- First start on an empty HOME with ``ANTHROPIC_AUTH_TOKEN``: theme picker
  (``Choose the text style that looks best with your terminal``), then
  ``Security notes:`` … ``Press Enter to continue``, then the trust dialog
  (``Quick safety check: Is this a project you created or one you trust?``,
  focus on ``No, exit``). Without any credential the login-method screen
  comes after the security notes.
- Seeded: ``hasCompletedOnboarding`` and the project's
  ``hasTrustDialogAccepted`` in ``~/.claude.json`` skip all of them. Auto
  permission mode is the default in this version (tool calls are judged by
  a classifier request instead of a prompt); ``settings.json``
  ``disableAutoMode: "disable"`` plus ``permissions.defaultMode: "default"``
  gives the classic permission prompt without the "Make auto mode your
  default permission mode?" offer that ``defaultMode`` alone brings up.
"""

import json
import os
import subprocess

NAME = "claude"
VERSION = "2.1.332"
PRESET = "claude"
MOCK = "mock_anthropic.py"
PACKAGE = "@anthropic-ai/claude-code"

# Screen texts of this version (used by the kit to recognise and drive states).
TEXT = {
    "theme": "Choose the text style that looks best with your terminal",
    "security": "Security notes:",
    "trust": "Quick safety check: Is this a project you created or one you trust?",
    "trust_yes": "Yes, I trust this folder",
    "login": "Select login method:",
    "api_key": "Detected a custom API key in your environment",
    "permission": "Do you want to proceed?",
}

# Expected muxvisor blocked reason of each first-start screen.
ONBOARDING_REASONS = {
    "theme": "onboarding",
    "security": "onboarding",
    "trust": "trust",
    "login": "login",
    "api_key": "api-key",
}

# How a person answers the permission prompt (tmux key names): option 1, Yes.
APPROVE_KEYS = ["Enter"]
TOOL_BEHAVIOUR = {"tool": "Bash", "reply": "I will create the marker file."}
AUTH_MODES = ("token", "oauth", "none")
# The unseeded first start with ANTHROPIC_AUTH_TOKEN: (screen, expected
# muxvisor reason, keys a person presses to go on). The trust dialog's focus
# starts on "No, exit": it is the last step, left unanswered.
ONBOARDING_STEPS = [
    ("theme", "onboarding", ["Enter"]),
    ("security", "onboarding", ["Enter"]),
    ("trust", "trust", None),
]
# The capture-only `screens` case: no retries, so error displays show at once.
CAPTURE_ENV = {"CLAUDE_CODE_MAX_RETRIES": "0"}


def USAGE_LIMIT_BEHAVIOUR():
    import time
    return {"usage_limit": int(time.time() + 2 * 3600)}
# Extra environment that keeps Claude's own retries of a failed request short.
RETRY_ENV = {"CLAUDE_CODE_MAX_RETRIES": "2"}


def _prefix(cache_dir):
    return os.path.join(cache_dir, "%s-%s" % (NAME, VERSION))


def find(cache_dir):
    """The installed binary, or None."""
    p = os.path.join(_prefix(cache_dir), "node_modules", ".bin", "claude")
    if os.path.exists(p) and os.access(p, os.X_OK):
        try:
            out = subprocess.run([p, "--version"], capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, DISABLE_AUTOUPDATER="1",
                                          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.startswith(VERSION):
            return p
    return None


def install(cache_dir):
    """Install the pinned version under cache_dir (idempotent); return the binary."""
    p = find(cache_dir)
    if p:
        return p
    os.makedirs(cache_dir, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--prefix", _prefix(cache_dir), "--no-audit", "--no-fund",
         "%s@%s" % (PACKAGE, VERSION)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900,
    )
    p = find(cache_dir)
    if not p:
        raise RuntimeError("claude %s not runnable after npm install" % VERSION)
    return p


def env(home, mock_port, auth="token"):
    """The program's environment. auth: "token" (ANTHROPIC_AUTH_TOKEN, API
    billing) or "oauth" (CLAUDE_CODE_OAUTH_TOKEN: a subscription, the only
    kind that shows the usage-limit notice) or "none" (no credential)."""
    e = {
        "HOME": home,
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:%d" % mock_port,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
    }
    if auth == "token":
        e["ANTHROPIC_AUTH_TOKEN"] = "dummy-conformance-token"
    elif auth == "oauth":
        e["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-dummy-conformance-token"
    return e


def prepare_home(home, workdir, mock_port, seed=True, auth="token"):
    """Write the pre-seeded config under home (unless seed is False) and
    return the program's environment (dict)."""
    os.makedirs(home, exist_ok=True)
    os.makedirs(workdir, exist_ok=True)
    if seed:
        cfg = {
            "hasCompletedOnboarding": True,
            "lastOnboardingVersion": VERSION,
            "theme": "dark",
            "numStartups": 1,
            "projects": {
                os.path.realpath(workdir): {
                    "hasTrustDialogAccepted": True,
                    "hasCompletedProjectOnboarding": True,
                    "allowedTools": [],
                },
            },
        }
        with open(os.path.join(home, ".claude.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        os.makedirs(os.path.join(home, ".claude"), exist_ok=True)
        write_settings(home, {})
    return env(home, mock_port, auth)


def base_settings():
    return {
        "disableAutoMode": "disable",
        "permissions": {"defaultMode": "default", "disableAutoMode": "disable"},
    }


def write_settings(home, extra):
    """~/.claude/settings.json = base settings merged with extra (top-level keys)."""
    s = base_settings()
    s.update(extra or {})
    os.makedirs(os.path.join(home, ".claude"), exist_ok=True)
    with open(os.path.join(home, ".claude", "settings.json"), "w") as f:
        json.dump(s, f, indent=2)


def argv(binary):
    """The program argv for `muxvisor add ID --agent claude ... -- <argv>`
    (the preset itself adds --session-id / --resume)."""
    return [binary]


def hooks_settings(muxvisor_path, submit_delay=None):
    """The settings.json "hooks" block of the README, with an absolute muxvisor
    path; with ``submit_delay`` its UserPromptSubmit hook first sleeps that
    many seconds (a loaded machine, for the kit's ``burst_slow_hook``)."""
    mv = muxvisor_path.replace('"', '\\"')

    def cmd(tail):
        # As the README: what a UserPromptSubmit hook prints joins the conversation.
        return ('[ -z "$MUXVISOR_IDENTITY" ] || "%s" mark "$MUXVISOR_IDENTITY" %s --hook-json'
                ' >/dev/null' % (mv, tail))

    slow = "sleep %s; " % float(submit_delay) if submit_delay else ""
    return {
        "hooks": {
            "UserPromptSubmit": [{"hooks": [{"type": "command", "command": slow + cmd("busy")}]}],
            "Stop": [{"hooks": [{"type": "command", "command": cmd("ready")}]}],
            "Notification": [{"matcher": "permission_prompt",
                              "hooks": [{"type": "command", "command": cmd("blocked --reason permission")}]}],
            "PostToolUse": [{"hooks": [{"type": "command", "command": cmd("busy")}]}],
        }
    }


def install_hooks(home, muxvisor_path, submit_delay=None):
    write_settings(home, hooks_settings(muxvisor_path, submit_delay))


def tool_marker(workdir):
    """The file the mock's default Bash tool call creates once approved."""
    return os.path.join(workdir, "muxvisor_tool_ran")
