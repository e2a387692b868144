"""Settings: one frozen object read from the environment, nowhere else."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import socket

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
    # The work queue's shards: with N > 1, a mailbox's tasks go to topic `{work_topic}-NN`
    # (NN = its shard, 01..N-1; shard 0 is work_topic itself), each topic with its own push
    # subscription, so deliveries run in parallel (docs/architecture.md, "Queue").
    work_shards: int = 1
    # Ticket events (docs/events.md): the topic every change is published to (empty: events are
    # stored and listed but wait unpublished) and the pull subscription `events tail` reads.
    # Short names mean projects/{project}/topics/{name} and .../subscriptions/{name}.
    events_topic: str = ""
    events_subscription: str = ""
    pubsub_emulator_host: str = ""  # host:port of the local Pub/Sub emulator (scripts/stacklib/pubsub.py)
    # A sync's lease: short, renewed by a heartbeat every lease_ttl_s / 3 while it works, so a
    # dead sync's mailbox is taken over within one lease period.
    lease_ttl_s: float = 30.0
    # What one `push` delivery may spend; Terraform keeps it under the push timeout (= ack deadline).
    push_time_budget_s: float = 60.0
    gmail_quota_per_minute: int = 6000
    # poll and push check the caller's Google-signed OIDC token (http/invoker.py): on unless the
    # local stack turns it off (scripts/stacklib/functions.py); the token's email must be this account.
    verify_invoker: bool = True
    invoker_service_account: str = ""
    # The service accounts whose OIDC tokens the `api` function accepts (http/api.py), checked the
    # same way; Terraform also grants them roles/run.invoker on that service only.
    api_callers: tuple = ()
    # `reply` waits this long for its send before answering "still queued".
    reply_wait_s: float = 60.0
    # Admin sign-in with Google (README.md, "Admin access"): who may sign in, and the OAuth
    # client of the admin pages (its secret lives in Secret Manager under that id).
    admin_emails: tuple = ()
    admin_domain: str = ""
    admin_oauth_client_id: str = ""
    admin_oauth_client_secret_id: str = ""
    # Google's public keys (PEM) for every token we verify: admin sign-in ID tokens and the
    # OIDC tokens of poll/push callers; empty means google-auth's default (Google's).
    oauth_certs_url: str = ""
    # A deployment (terraform/README.md) gives each function its own URL: {function: URL};
    # locally they share one base (functions_url).
    function_urls: dict = dataclasses.field(default_factory=dict)
    region: str = ""
    # Who runs the CLI, for the audit log (docs/privacy.md): MAILBRIDGE_ACTOR, else the service
    # account of GOOGLE_APPLICATION_CREDENTIALS, else the local user.
    cli_actor: str = ""
    # Tests and the bench only: a file every document write is appended to, so the strictness
    # layer counts the writes of every process (adapters/firestore/accounting.py).
    write_log: str = ""

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
            api_callers=parse_api_callers(env.get("MAILBRIDGE_API_CALLERS", "")),
            work_topic=env.get("MAILBRIDGE_WORK_TOPIC", ""),
            events_topic=env.get("MAILBRIDGE_EVENTS_TOPIC", "").strip(),
            events_subscription=env.get("MAILBRIDGE_EVENTS_SUBSCRIPTION", "").strip(),
            pubsub_emulator_host=env.get("PUBSUB_EMULATOR_HOST", ""),
            admin_emails=parse_admin_emails(env.get("MAILBRIDGE_ADMIN_EMAILS", "")),
            admin_domain=env.get("MAILBRIDGE_ADMIN_DOMAIN", "").strip().lower(),
            admin_oauth_client_id=env.get("MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID", "").strip(),
            admin_oauth_client_secret_id=env.get("MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID", "").strip(),
            oauth_certs_url=env.get("MAILBRIDGE_OAUTH_CERTS_URL", ""),
            function_urls=_function_urls(env.get("MAILBRIDGE_FUNCTION_URLS", "")),
            region=env.get("MAILBRIDGE_REGION", ""),
            cli_actor=_cli_actor(env),
            write_log=env.get("MAILBRIDGE_WRITE_LOG", ""),
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
            ("work_shards", "MAILBRIDGE_WORK_SHARDS", int),
        ):
            if env.get(key):
                try:
                    values[name] = cast(env[key])
                except ValueError as e:
                    raise ConfigError(f"{key} must be a number, got {env[key]!r}") from e
        values.update(overrides)
        if not 1 <= int(values.get("work_shards", 1)) <= 16:
            raise ConfigError(f"MAILBRIDGE_WORK_SHARDS must be 1 to 16, got {values['work_shards']!r}")
        return cls(**values)

    def function_url(self, name: str) -> str:
        """The URL of one of our functions: its own URL in a deployment (MAILBRIDGE_FUNCTION_URLS),
        else `<MAILBRIDGE_FUNCTIONS_URL>/<name>` (the local stack serves all under one base)."""
        if self.function_urls.get(name):
            return self.function_urls[name]
        if not self.functions_url:
            if self.function_urls:
                raise ConfigError(f"MAILBRIDGE_FUNCTION_URLS has no URL for function {name!r}")
            raise ConfigError("neither MAILBRIDGE_FUNCTION_URLS nor MAILBRIDGE_FUNCTIONS_URL is set")
        return f"{self.functions_url}/{name}"

    @property
    def work_topic_path(self) -> str:
        if not self.work_topic or "/" in self.work_topic:
            return self.work_topic
        return f"projects/{self.project}/topics/{self.work_topic}"

    @property
    def events_topic_path(self) -> str:
        return _resource_path(self.project, "topics", self.events_topic)

    @property
    def events_subscription_path(self) -> str:
        return _resource_path(self.project, "subscriptions", self.events_subscription)

    def work_topic_of(self, shard: int) -> str:
        """The full path of one shard's topic: shard 0 is the work topic, shard k its `-kk` twin."""
        return self.work_topic_path if shard == 0 else f"{self.work_topic_path}-{shard:02d}"

    @property
    def has_function_urls(self) -> bool:
        return bool(self.functions_url or self.function_urls)

    @property
    def redirect_uri(self) -> str:
        return self.function_url("oauth_callback")

    @property
    def admin_redirect_uri(self) -> str:
        """Where Google returns after an admin signs in (register it with the admin OAuth client)."""
        return self.function_url("admin").rstrip("/") + "/signin/callback"


def _resource_path(project: str, kind: str, name: str) -> str:
    """A Pub/Sub topic or subscription's full path from a short name (a full path stays)."""
    if not name or "/" in name:
        return name
    return f"projects/{project}/{kind}/{name}"


def _flag(env, key: str, default: bool) -> bool:
    value = env.get(key, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, got {env[key]!r}")


def parse_admin_emails(raw) -> tuple:
    """A comma (or whitespace) separated list of addresses, lower-cased, without repeats."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw or "").replace(",", " ").split()
    seen: list[str] = []
    for item in items:
        item = str(item).strip().lower()
        if item and item not in seen:
            seen.append(item)
    return tuple(seen)


def parse_api_callers(raw: str) -> tuple:
    """MAILBRIDGE_API_CALLERS: service account emails, comma or space separated; anything that is
    not an address is refused, so a typo never silently shuts every caller out."""
    callers = parse_admin_emails(raw)
    for caller in callers:
        name, at, domain = caller.partition("@")
        if not (name and at and "." in domain and "@" not in domain):
            raise ConfigError(f"MAILBRIDGE_API_CALLERS must list service account emails, got {caller!r}")
    return callers


def _function_urls(raw: str) -> dict:
    """MAILBRIDGE_FUNCTION_URLS: a JSON object {function: URL} (Terraform writes it)."""
    if not raw.strip():
        return {}
    try:
        urls = json.loads(raw)
    except ValueError as e:
        raise ConfigError("MAILBRIDGE_FUNCTION_URLS must be a JSON object {function: URL}") from e
    if not isinstance(urls, dict) or not all(isinstance(v, str) for v in urls.values()):
        raise ConfigError("MAILBRIDGE_FUNCTION_URLS must be a JSON object {function: URL}")
    return {str(k): v.rstrip("/") for k, v in urls.items()}


def _cli_actor(env) -> str:
    if env.get("MAILBRIDGE_ACTOR"):
        return env["MAILBRIDGE_ACTOR"].strip().lower()
    try:
        with open(env.get("GOOGLE_APPLICATION_CREDENTIALS") or "", encoding="utf-8") as f:
            email = json.load(f).get("client_email")
        if email:
            return str(email).lower()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        return f"cli:{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "cli:unknown"
