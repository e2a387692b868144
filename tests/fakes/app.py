"""The fake Google WSGI application: one URL map over Gmail, batch, OAuth, Secret Manager and
the control plane, with all state behind a single lock.

A single re-entrant lock keeps the model simple and race-free; handlers are fast and the only
slow things (injected latency, Pub/Sub calls) happen outside it.
"""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .batch import handle_batch
from .behaviour import Behaviour
from .control import Control
from .errors import GoogleApiError
from .gmail_api import GmailApi
from .limits import (DEFAULT_PROJECT_QUOTA_PER_MINUTE, DEFAULT_QUOTA_PER_MINUTE,
                     DEFAULT_WINDOW_SECONDS, Faults, QuotaLedger)
from .mailbox import HistoryRecord, Mailbox
from .notifier import Notifier
from .oauth import OAuthServer, hosted_domain
from .secret_manager import SecretManager

_OAUTH_ROUTES = [
    # (rule, methods, OAuthServer method); the aliases are the other URLs Google serves.
    ("/o/oauth2/auth", ["GET"], "authorize"),
    ("/o/oauth2/v2/auth", ["GET"], "authorize"),
    ("/o/oauth2/consent", ["POST"], "consent"),
    ("/token", ["POST"], "token"),
    ("/o/oauth2/token", ["POST"], "token"),
    ("/revoke", ["POST", "GET"], "revoke"),
    ("/o/oauth2/revoke", ["POST", "GET"], "revoke"),
    ("/oauth2/v3/userinfo", ["GET", "POST"], "userinfo"),
    ("/oauth2/v2/userinfo", ["GET"], "userinfo"),
    ("/v1/userinfo", ["GET", "POST"], "userinfo"),
    ("/.well-known/openid-configuration", ["GET"], "openid_configuration"),
    ("/oauth2/v3/tokeninfo", ["GET", "POST"], "tokeninfo"),
    ("/oauth2/v1/certs", ["GET"], "certs"),
    ("/oauth2/v3/certs", ["GET"], "jwks"),
]


class FakeGoogle:
    def __init__(self, quota_per_minute: int = DEFAULT_QUOTA_PER_MINUTE,
                 pubsub_emulator_host: str | None = None,
                 behaviour: dict[str, Any] | None = None):
        self.lock = threading.RLock()
        self._default_quota = quota_per_minute
        self.mailboxes: dict[str, Mailbox] = {}
        self.oauth = OAuthServer(self.account_name, self.account_hd)
        self.behaviour = Behaviour(behaviour)
        self.secret_manager = SecretManager()
        self.quota = QuotaLedger(quota_per_minute, DEFAULT_WINDOW_SECONDS)
        self.faults = Faults()
        self.notifier = Notifier(pubsub_emulator_host)
        self.gmail = GmailApi(self)
        self.control = Control(self)
        self._accounts_created = 0

        rules = []
        for index, (method, template, method_id, _) in enumerate(self.gmail.routes):
            path = "/" + template.replace("{", "<").replace("}", ">")
            rules.append(Rule(path, methods=[method], endpoint=("gmail", index)))
        for path in ("/batch/gmail/v1", "/batch"):
            rules.append(Rule(path, methods=["POST"], endpoint=("batch", None)))
        for path, methods, name in _OAUTH_ROUTES:
            rules.append(Rule(path, methods=methods, endpoint=("oauth", name)))
        for path, method, name in self.control.rules():
            rules.append(Rule(path, methods=[method], endpoint=("control", name)))
        rules.append(Rule("/v1/<path:path>", methods=["GET", "POST", "PATCH", "DELETE"],
                          endpoint=("secrets", None)))
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)

    # ----- state --------------------------------------------------------------------------------

    def account_name(self, email: str) -> str | None:
        mailbox = self.mailboxes.get(email.lower())
        return mailbox.name if mailbox else None

    def account_hd(self, email: str) -> str | None:
        mailbox = self.mailboxes.get(email.lower())
        if mailbox is not None and mailbox.hd_set:
            return mailbox.hd
        return hosted_domain(email)

    def create_mailbox(self, email: str, name: str | None = None) -> tuple[Mailbox, bool]:
        key = email.strip().lower()
        if key in self.mailboxes:
            return self.mailboxes[key], False
        self._accounts_created += 1
        # Distinct starting historyIds per account catch code that mixes mailboxes up.
        base = 1000 + 7919 * self._accounts_created
        mailbox = Mailbox(key, name or key.split("@")[0], base, on_history=self._on_history)
        self.mailboxes[key] = mailbox
        return mailbox, True

    def _on_history(self, mailbox: Mailbox, record: HistoryRecord, labels_before: tuple) -> None:
        watch = mailbox.watch
        if watch is not None and watch.wants(record, labels_before):
            self.notifier.notify(mailbox.email, watch.topic_name, record.id)

    def reset(self) -> None:
        self.mailboxes.clear()
        self.oauth.reset()
        self.secret_manager.reset()
        self.quota.reset_counters()
        self.quota.per_minute = self._default_quota
        self.quota.window_seconds = DEFAULT_WINDOW_SECONDS
        self.quota.project_per_minute = DEFAULT_PROJECT_QUOTA_PER_MINUTE
        self.behaviour.reset()
        self.gmail.uploads.clear()
        self.faults.configure({})
        self.notifier.reset()

    def served_routes(self) -> list[dict[str, Any]]:
        return [
            {"rule": rule.rule, "methods": sorted(rule.methods - {"HEAD", "OPTIONS"}),
             "kind": rule.endpoint[0],
             "method_id": self.gmail.routes[rule.endpoint[1]][2]
             if rule.endpoint[0] == "gmail" else None}
            for rule in self.url_map.iter_rules()
        ]

    # ----- WSGI ---------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            (kind, key), args = adapter.match()
        except (NotFound, MethodNotAllowed):
            return GoogleApiError(404, f"Not found: {request.method} {request.path}").response()
        except HTTPException as error:  # e.g. a redirect for a missing slash
            return error.get_response(request.environ)
        if kind == "gmail":
            _, _, method_id, handler = self.gmail.routes[key]
            return self.gmail.handle(request, method_id, handler, dict(args))
        if kind == "batch":
            return handle_batch(request, self.dispatch)
        if kind == "secrets":
            with self.lock:
                return self.secret_manager.handle(request, args["path"])
        with self.lock:
            if kind == "oauth":
                return getattr(self.oauth, key)(request)
            return self.control.handle(request, key, dict(args))

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)
