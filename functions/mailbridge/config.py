"""Settings: one frozen object read from the environment, nowhere else."""

from __future__ import annotations

import dataclasses
import json
import os

from mailbridge.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Settings:
    project: str
    instance: str = "production"
    functions_url: str = ""
    prefix: str = "mailbridge"
    signing_key: str = ""
    attachments_bucket: str = ""
    # Google endpoints: empty means the official libraries' defaults.
    gmail_api_url: str = ""
    oauth_auth_url: str = ""
    oauth_token_url: str = ""
    oauth_revoke_url: str = ""
    secret_manager_url: str = ""
    storage_url: str = ""
    pubsub_topic: str = ""
    poll_time_budget_s: float = 240.0
    # A poll's lease lives budget + margin: long enough to outlast the slowest Gmail call, short
    # enough that a crashed poll's mailbox is taken over by the next scheduled run.
    lease_margin_s: float = 120.0
    poll_concurrency: int = 8
    max_attempts: int = 3
    # The work queue (docs/architecture.md, "Queue"): topic of the fan-out; empty = no queue,
    # the scheduled tick then syncs inline as before. A short name means projects/{project}/topics/{name}.
    work_topic: str = ""
    pubsub_emulator_host: str = ""  # host:port of the local Pub/Sub emulator (scripts/stacklib.py)
    # A sync's lease: short, renewed by a heartbeat every lease_ttl_s / 3 while it works, so a
    # dead sync's mailbox is taken over within one lease period.
    lease_ttl_s: float = 30.0
    # What one `push` delivery may spend; Terraform keeps it under the push timeout (= ack deadline).
    push_time_budget_s: float = 60.0
    gmail_quota_per_minute: int = 6000
    # poll and push check the caller's Google-signed OIDC token (http/invoker.py): on unless the
    # local stack turns it off (scripts/stacklib.py); the token's email must be this account.
    verify_invoker: bool = True
    invoker_service_account: str = ""
    oidc_certs_url: str = ""  # empty: Google's (the library default); the fake serves its own
    # A deployment gives every function its own URL ({function: url}); locally they share one base.
    function_urls: tuple[tuple[str, str], ...] = ()
    # `reply` waits this long for its send before answering "still queued".
    reply_wait_s: float = 60.0

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        project = overrides.pop("project", None) or env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT")
        if not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set")
        values = dict(
            project=project,
            instance=env.get("MAILBRIDGE_INSTANCE", "production"),
            functions_url=env.get("MAILBRIDGE_FUNCTIONS_URL", "").rstrip("/"),
            prefix=env.get("MAILBRIDGE_PREFIX", "mailbridge"),
            signing_key=env.get("MAILBRIDGE_SIGNING_KEY", ""),
            attachments_bucket=env.get("MAILBRIDGE_ATTACHMENTS_BUCKET", f"{project}-mailbridge-attachments"),
            gmail_api_url=env.get("MAILBRIDGE_GMAIL_API_URL", "").rstrip("/"),
            oauth_auth_url=env.get("MAILBRIDGE_OAUTH_AUTH_URL", ""),
            oauth_token_url=env.get("MAILBRIDGE_OAUTH_TOKEN_URL", ""),
            oauth_revoke_url=env.get("MAILBRIDGE_OAUTH_REVOKE_URL", ""),
            secret_manager_url=env.get("MAILBRIDGE_SECRET_MANAGER_URL", "").rstrip("/"),
            storage_url=env.get("STORAGE_EMULATOR_HOST", "").rstrip("/"),
            pubsub_topic=env.get("MAILBRIDGE_PUBSUB_TOPIC", ""),
            verify_invoker=_flag(env, "MAILBRIDGE_VERIFY_INVOKER", True),
            invoker_service_account=env.get("MAILBRIDGE_INVOKER_SERVICE_ACCOUNT", "").strip().lower(),
            oidc_certs_url=env.get("MAILBRIDGE_OIDC_CERTS_URL", ""),
            function_urls=_function_urls(env.get("MAILBRIDGE_FUNCTION_URLS", "")),
            work_topic=env.get("MAILBRIDGE_WORK_TOPIC", ""),
            pubsub_emulator_host=env.get("PUBSUB_EMULATOR_HOST", ""),
        )
        for name, key, cast in (
            ("poll_time_budget_s", "MAILBRIDGE_POLL_TIME_BUDGET_S", float),
            ("lease_margin_s", "MAILBRIDGE_LEASE_MARGIN_S", float),
            ("poll_concurrency", "MAILBRIDGE_POLL_CONCURRENCY", int),
            ("max_attempts", "MAILBRIDGE_MAX_ATTEMPTS", int),
            ("gmail_quota_per_minute", "MAILBRIDGE_GMAIL_QUOTA_PER_MINUTE", int),
            ("reply_wait_s", "MAILBRIDGE_REPLY_WAIT_S", float),
            ("lease_ttl_s", "MAILBRIDGE_LEASE_TTL_S", float),
            ("push_time_budget_s", "MAILBRIDGE_PUSH_TIME_BUDGET_S", float),
        ):
            if env.get(key):
                try:
                    values[name] = cast(env[key])
                except ValueError as e:
                    raise ConfigError(f"{key} must be a number, got {env[key]!r}") from e
        values.update(overrides)
        return cls(**values)

    def function_url(self, name: str) -> str:
        for function, url in self.function_urls:
            if function == name:
                return url
        if not self.functions_url:
            raise ConfigError("MAILBRIDGE_FUNCTIONS_URL is not set")
        return f"{self.functions_url}/{name}"

    @property
    def work_topic_path(self) -> str:
        if not self.work_topic or "/" in self.work_topic:
            return self.work_topic
        return f"projects/{self.project}/topics/{self.work_topic}"

    @property
    def redirect_uri(self) -> str:
        return self.function_url("oauth_callback")


def _flag(env, key: str, default: bool) -> bool:
    value = env.get(key, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, got {env[key]!r}")


def _function_urls(value: str) -> tuple[tuple[str, str], ...]:
    """MAILBRIDGE_FUNCTION_URLS: a JSON object {function: URL} (Terraform writes it)."""
    if not value.strip():
        return ()
    try:
        urls = json.loads(value)
    except ValueError as e:
        raise ConfigError("MAILBRIDGE_FUNCTION_URLS must be a JSON object {function: URL}") from e
    if not isinstance(urls, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in urls.items()):
        raise ConfigError("MAILBRIDGE_FUNCTION_URLS must be a JSON object {function: URL}")
    return tuple((name, url.rstrip("/")) for name, url in sorted(urls.items()))
