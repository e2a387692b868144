"""Cloud Storage adapter for attachment bytes (content-addressed by sha256, so re-uploads are harmless)."""

from __future__ import annotations

from google.api_core import exceptions as gexc


class Blobs:
    def __init__(self, settings):
        from google.cloud import storage

        if settings.storage_url:
            from google.auth.credentials import AnonymousCredentials

            self.client = storage.Client(project=settings.project, credentials=AnonymousCredentials())
        else:
            self.client = storage.Client(project=settings.project)
        self.bucket = self.client.bucket(settings.attachments_bucket)

    @staticmethod
    def key(sha256: str) -> str:
        return f"attachments/{sha256}"

    def put(self, sha256: str, data: bytes, content_type: str) -> str:
        blob = self.bucket.blob(self.key(sha256))
        try:
            # Stored as opaque bytes: the real type lives in Firestore, downloads are served as
            # attachments, and message/* or multipart/* bodies confuse some storage servers.
            blob.upload_from_string(data, content_type="application/octet-stream", if_generation_match=0)
        except gexc.PreconditionFailed:
            pass  # same content already stored
        return self.key(sha256)

    @staticmethod
    def _checked(sha256: str) -> str:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("attachment key must be a sha256 hex digest")
        return sha256

    def get(self, sha256: str) -> bytes:
        return self.bucket.blob(self.key(self._checked(sha256))).download_as_bytes()

    def delete(self, sha256: str) -> bool:
        """Erasure, purge and retention (docs/privacy.md): the object and, in a versioned bucket
        (terraform/storage.tf), its older generations too; False if it was not stored."""
        key = self.key(self._checked(sha256))
        deleted = False
        for found in self.client.list_blobs(self.bucket, prefix=key, versions=True):
            if found.name != key:
                continue
            try:
                self.bucket.blob(key, generation=found.generation).delete()
                deleted = True
            except gexc.NotFound:
                continue  # deleted meanwhile
        return deleted
