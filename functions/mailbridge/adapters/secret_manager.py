"""Secret Manager adapter: client secrets and refresh tokens live here and nowhere else."""

from __future__ import annotations

from google.api_core import exceptions as gexc

from mailbridge.errors import MailbridgeError


class Secrets:
    def __init__(self, client, project: str):
        self.client = client
        self.project = project

    def _name(self, secret_id: str) -> str:
        return f"projects/{self.project}/secrets/{secret_id}"

    def put(self, secret_id: str, value: str) -> None:
        """Create the secret if needed and add a new version holding `value`."""
        try:
            self.client.create_secret(
                request={"parent": f"projects/{self.project}", "secret_id": secret_id,
                         "secret": {"replication": {"automatic": {}}, "labels": {"app": "mailbridge"}}}
            )
        except gexc.Conflict:  # AlreadyExists over gRPC; a plain 409 Conflict over the REST transport
            pass
        except gexc.GoogleAPICallError as e:
            raise MailbridgeError(f"Secret Manager refused to create {secret_id}: {e.__class__.__name__}") from None
        try:
            self.client.add_secret_version(
                request={"parent": self._name(secret_id), "payload": {"data": value.encode()}}
            )
        except gexc.GoogleAPICallError as e:
            raise MailbridgeError(f"Secret Manager refused a new version of {secret_id}: {e.__class__.__name__}") from None

    def get(self, secret_id: str) -> str | None:
        try:
            response = self.client.access_secret_version(
                request={"name": f"{self._name(secret_id)}/versions/latest"}
            )
        except (gexc.NotFound, gexc.FailedPrecondition, gexc.BadRequest):
            return None  # never created, or every version destroyed
        return response.payload.data.decode()

    def destroy_all_versions(self, secret_id: str) -> int:
        destroyed = 0
        try:
            versions = list(self.client.list_secret_versions(request={"parent": self._name(secret_id)}))
        except gexc.NotFound:
            return 0
        for version in versions:
            if version.state.name in ("ENABLED", "DISABLED"):
                self.client.destroy_secret_version(request={"name": version.name})
                destroyed += 1
        return destroyed

    def destroy_old_versions(self, secret_id: str) -> int:
        """Destroy every version but the newest (a reconnection's older refresh tokens)."""
        try:
            versions = list(self.client.list_secret_versions(request={"parent": self._name(secret_id)}))
        except gexc.NotFound:
            return 0

        def number(version) -> int:
            tail = version.name.rsplit("/", 1)[-1]
            return int(tail) if tail.isdigit() else -1

        live = sorted((v for v in versions if v.state.name in ("ENABLED", "DISABLED")), key=number)
        for version in live[:-1]:
            self.client.destroy_secret_version(request={"name": version.name})
        return max(0, len(live) - 1)
