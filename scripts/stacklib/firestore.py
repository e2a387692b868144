"""The Firestore emulator: the SDK's jar run by java, else gcloud, else the npm emulator."""

from __future__ import annotations

import shutil
import subprocess

from .common import HOST, REPO, StackError, sdk_root

NPM_FIRESTORE_DIR = REPO / ".stack" / "npm-firestore"


def firestore_command(port: int) -> list[str]:
    root = sdk_root()
    jar = root / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar" if root else None
    java = shutil.which("java")
    if jar and jar.is_file() and java:
        # The jar has no Main-Class; this is what the SDK's cloud_firestore_emulator script runs.
        return [java, "-Duser.language=en", "-cp", str(jar),
                "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
                f"--host={HOST}", f"--port={port}"]
    if shutil.which("gcloud"):
        return ["gcloud", "emulators", "firestore", "start", f"--host-port={HOST}:{port}", "--quiet"]
    if shutil.which("node") and shutil.which("npm"):
        return _npm_firestore_command(port)
    raise StackError("firestore: no emulator found (need the gcloud cloud-firestore-emulator "
                     "component with java, gcloud, or npx for @firestore-emulator/server)")


def _npm_firestore_command(port: int) -> list[str]:
    """Last resort where gcloud is absent: npm @firestore-emulator/server (a library, no CLI).

    It speaks gRPC only, so the stack probes it over TCP and cannot reset it over HTTP.
    """
    if not (NPM_FIRESTORE_DIR / "node_modules/@firestore-emulator/server").is_dir():
        NPM_FIRESTORE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(NPM_FIRESTORE_DIR),
                        "@firestore-emulator/server"], check=True, timeout=300)
    script = ("import('@firestore-emulator/server').then(async (m) => {"
              f" const server = new m.FirestoreServer(); await server.start({port});"
              f" console.log('firestore emulator on {HOST}:{port}'); }})")
    return ["node", "--input-type=module", "-e", script]
