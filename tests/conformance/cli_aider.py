"""Conformance profile: Aider (PyPI ``aider-chat==0.86.2``) under muxvisor.

Aider talks to the OpenAI Chat Completions API through litellm. The profile
points it at the local mock (``OPENAI_API_BASE=http://127.0.0.1:PORT/v1``,
a dummy ``OPENAI_API_KEY``) and closes every other door to the internet:

- litellm's model price list: ``LITELLM_LOCAL_MODEL_COST_MAP=True`` makes
  litellm read its bundled copy instead of fetching it at import.
- Aider's OWN copy of that list (``aider/models.py`` ``ModelInfoManager``)
  is fetched from raw.githubusercontent.com unless
  ``~/.aider/caches/model_prices_and_context_window.json`` is younger than
  24 h and not empty: ``prepare_home`` always writes it (from litellm's
  bundled ``model_prices_and_context_window_backup.json``), seed or not.
- the PyPI version check, analytics (PostHog) and the release-notes offer
  are what ``seed=True`` switches off, with ``AIDER_*`` environment
  variables (Aider reads every option from ``AIDER_<OPTION>``) and a
  ``~/.aider/analytics.json`` that says "asked, disabled".
- as a safety net every HTTP(S) proxy variable names a dead port on
  127.0.0.1 (``NO_PROXY`` exempts 127.0.0.1/localhost): anything that still
  tries the internet fails at once instead of leaving the machine.

``seed=False`` leaves out the ``AIDER_*`` switches, so Aider asks its
first-start questions, in this order: analytics opt-in (Aider asks 10 % of
user ids; the profile writes an id in that 10 % so it always asks), create a
git repo, and (first run of this version) the release notes. Each is a
``(Y)es/(N)o ... [Yes]:`` question (blocked/onboarding for the preset).
The update question cannot be reached offline (the PyPI check just fails,
printing ``Error checking pypi for new version: ...``). Without any API key
and without ``--model`` Aider offers an OpenRouter login instead
(blocked/login); this profile always gives a key and a model.

Aider has no hooks: nothing it runs can call ``muxvisor mark``, so its
state comes from the screen only (``--agent aider``).
"""

import json
import os
import shutil
import subprocess
import sys

NAME = "aider"
VERSION = "0.86.2"
PRESET = "aider"
MOCK = "mock_openai.py"

# The model litellm routes to the OpenAI base (``openai/`` prefix), and that
# Aider knows (aider/resources/model-settings.yml): its default edit format
# is "diff" (SEARCH/REPLACE blocks), under which a fenced ```bash block in an
# answer becomes a "Run shell command?" question; gpt-4o-mini's "whole"
# format treats such a block as a malformed file listing instead. Its weak
# model (commit messages, history summaries) is gpt-4o-mini: the mock
# answers any model name.
MODEL = "openai/gpt-4o"

# Port 9 (discard) on loopback: nothing listens, so a proxied request is
# refused at once.
DEAD_PROXY = "http://127.0.0.1:9"


def _venv(cache_dir):
    return os.path.join(cache_dir, f"aider-{VERSION}")


def find(cache_dir):
    """The aider executable of the pinned install, or None."""
    exe = os.path.join(_venv(cache_dir), "bin", "aider")
    py = os.path.join(_venv(cache_dir), "bin", "python")
    if not (os.access(exe, os.X_OK) and os.access(py, os.X_OK)):
        return None
    try:
        out = subprocess.run(
            [py, "-c", "import aider; print(aider.__version__)"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or out.stdout.strip() != VERSION:
        return None
    return exe


def install(cache_dir):
    """Idempotent: a venv under cache_dir with aider-chat==VERSION; its aider."""
    exe = find(cache_dir)
    if exe:
        return exe
    venv = _venv(cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    if not os.path.exists(os.path.join(venv, "bin", "python")):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run(
        [os.path.join(venv, "bin", "pip"), "install", "--disable-pip-version-check",
         "-q", f"aider-chat=={VERSION}"],
        check=True,
    )
    exe = find(cache_dir)
    if not exe:
        raise RuntimeError(f"aider-chat=={VERSION} did not install into {venv}")
    return exe


def _litellm_cost_map(binary):
    """litellm's bundled price list, next to the venv's aider."""
    venv = os.path.dirname(os.path.dirname(os.path.realpath(binary)))
    lib = os.path.join(venv, "lib")
    for d in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
        p = os.path.join(lib, d, "site-packages", "litellm",
                         "model_prices_and_context_window_backup.json")
        if os.path.exists(p):
            return p
    return None


def prepare_home(home, workdir, mock_port, seed=True, binary=None):
    """Make HOME ready for Aider; return the environment for the peer.

    ``binary`` (optional) is the installed aider, to find litellm's bundled
    price list; by default the pinned install under /work/cache/conformance.
    """
    os.makedirs(home, exist_ok=True)
    os.makedirs(workdir, exist_ok=True)
    dot = os.path.join(home, ".aider")
    caches = os.path.join(dot, "caches")
    os.makedirs(caches, exist_ok=True)

    # Aider's own model-info cache: present and fresh, so it never fetches.
    binary = binary or os.path.join(_venv("/work/cache/conformance"), "bin", "aider")
    src = _litellm_cost_map(binary)
    dst = os.path.join(caches, "model_prices_and_context_window.json")
    if src:
        shutil.copyfile(src, dst)
    else:  # a minimal entry is enough for the model we use
        with open(dst, "w") as f:
            json.dump({name: {
                "max_tokens": 16384, "max_input_tokens": 128000,
                "max_output_tokens": 16384, "input_cost_per_token": 2.5e-06,
                "output_cost_per_token": 1e-05, "litellm_provider": "openai",
                "mode": "chat", "supports_function_calling": True}
                for name in ("gpt-4o", "gpt-4o-mini")}, f)

    base = f"http://127.0.0.1:{mock_port}/v1"
    env = {
        "HOME": home,
        "OPENAI_API_BASE": base,
        "OPENAI_BASE_URL": base,
        "OPENAI_API_KEY": "sk-mock-aider-conformance",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HTTP_PROXY": DEAD_PROXY,
        "HTTPS_PROXY": DEAD_PROXY,
        "ALL_PROXY": DEAD_PROXY,
        "http_proxy": DEAD_PROXY,
        "https_proxy": DEAD_PROXY,
        "all_proxy": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # no browser: the release-notes / docs offers must not open one
        "BROWSER": "true",
    }
    if seed:
        env.update({
            "AIDER_GIT": "false",
            "AIDER_SHOW_MODEL_WARNINGS": "false",
            "AIDER_SHOW_RELEASE_NOTES": "false",
            "AIDER_CHECK_UPDATE": "false",
            "AIDER_ANALYTICS_DISABLE": "true",
        })
        analytics = {"uuid": "00000000-0000-4000-8000-000000000000",
                     "permanently_disable": True, "asked_opt_in": True}
    else:
        # Aider asks the analytics question of 10 % of user ids (the first
        # hex digits of the uuid it makes up at first start): give it one
        # in that 10 % so the unseeded start always asks, in a fixed order.
        analytics = {"uuid": "00000000-0000-4000-8000-000000000000",
                     "permanently_disable": False, "asked_opt_in": False}
    with open(os.path.join(dot, "analytics.json"), "w") as f:
        json.dump(analytics, f)
    return env


def argv(binary):
    """Program argv for ``muxvisor add ID --agent aider ... -- <argv>``.

    ``--restore-chat-history`` is Aider's only resume: it reloads
    ``.aider.chat.history.md`` of the working directory (harmless when
    there is none), so a restart after a crash continues the conversation.
    """
    return [binary, "--model", MODEL, "--restore-chat-history"]


def resume_argv(binary, session_id=None):
    """Aider has no conversation id: resuming is the same argv (above)."""
    return argv(binary)


# -- kit options (see kit.py) -------------------------------------------------

# An answer holding a fenced shell block: under the "diff" edit format Aider
# shows the command and asks ``Run shell command? (Y)es/(N)o/(D)on't ask
# again [Yes]:``. A command with no output asks nothing more (with output it
# asks ``Add command output to the chat? (Y)es/(N)o/(D)on't ask again
# [Yes]:``). Aider never uses the API's tool calls.
TOOL_FILE = "muxvisor-tool-probe"
TOOL_BEHAVIOUR = {"reply": "I will run this:\n\n```bash\ntouch %s\n```\n" % TOOL_FILE}
APPROVE_KEYS = ["Enter"]  # the default answer is Yes


def tool_marker(workdir):
    return os.path.join(workdir, TOOL_FILE)


# The unseeded start, in Aider's order (aider/main.py): analytics opt-in
# (always, given the analytics.json above), then (after a failed PyPI check,
# printed as ``Error checking pypi for new version: ...``) the git question,
# then on the first run of this version the release notes. Each is a
# confirm_ask, which the preset reads as blocked/onboarding.
# The preset reads these first-start questions as blocked/onboarding (the
# captures' EXPECT: first-start-*.txt onboarding); "permission" here was
# stale and failed the onboarding case against the updated preset.
ONBOARDING_STEPS = [
    ("analytics", "onboarding", ["n", "Enter"]),
    ("create-git-repo", "onboarding", ["n", "Enter"]),
    ("release-notes", "onboarding", ["n", "Enter"]),
]

SKIP = {
    "usage_limit": "Aider 0.86.2 has no usage-limit state: a 429 (any body) is a "
                   "litellm RateLimitError, retried with backoff (`Retrying in N "
                   "seconds...`) until 60 s of backoff, with no reset time",
}


def hooks_settings(muxvisor_path):
    """Aider has no hook mechanism (no command runs on turn start/end or on a
    confirmation), so there is nothing to install: None."""
    return None
