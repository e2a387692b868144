"""What every piece of the local stack shares: where the repository and its tools are, the host
every service binds to, and the one error they raise."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Not resolved: a copy of scripts/ in a scratch tree works on that tree.
REPO = Path(os.path.abspath(__file__)).parent.parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
HOST = "127.0.0.1"

SDK_CANDIDATES = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    os.path.expanduser("~/google-cloud-sdk"),
)


class StackError(Exception):
    """A service did not start, did not answer, or could not be stopped."""


def sdk_root() -> Path | None:
    """The Google Cloud SDK with its emulator components, if one is installed."""
    for candidate in [os.environ.get("CLOUDSDK_ROOT_DIR", "")] + list(SDK_CANDIDATES):
        if candidate and Path(candidate, "platform").is_dir():
            return Path(candidate)
    gcloud = shutil.which("gcloud")
    if gcloud:  # slow (about a second), so only when the usual places are empty
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()
            if out and Path(out, "platform").is_dir():
                return Path(out)
    return None


def venv_python() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
