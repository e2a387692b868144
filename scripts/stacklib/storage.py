"""The Cloud Storage emulator and the attachments bucket on it."""

from __future__ import annotations

from pathlib import Path

from .common import HOST, StackError, venv_python

ATTACHMENTS_BUCKET = "mailbridge-local-attachments"


def storage_command(port: int) -> list[str]:
    exe = Path(venv_python()).parent / "gcp-storage-emulator"
    base = [str(exe)] if exe.exists() else [venv_python(), "-m", "gcp_storage_emulator"]
    return base + ["start", f"--host={HOST}", f"--port={port}", "--in-memory"]


def create_bucket(storage_url: str, project: str, bucket: str) -> None:
    """Create the attachments bucket through the official client (idempotent)."""
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=project, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": storage_url})
    try:
        client.create_bucket(bucket)
    except exceptions.Conflict:
        pass
    except Exception as e:
        raise StackError(f"storage: could not create bucket {bucket}: {e}") from e
