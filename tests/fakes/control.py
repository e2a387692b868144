"""The fake's control plane (``/_fake/...``): set up accounts and clients, deliver mail, inject
faults, read statistics. JSON in and out; every route and its JSON is documented in tests/fakes/README.md.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .behaviour import BehaviourError
from .errors import GoogleApiError, json_response
from .mime import b64url, parse, prepend_header

AUTHENTICATION_VERDICTS = ("pass", "fail", "none")
SEND_AS_STATUSES = ("accepted", "pending")


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _body(request: Request) -> dict[str, Any]:
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ControlError(400, "expected a JSON object")
    return body


class Control:
    """Handlers for /_fake routes; each is called with the state lock held."""

    def __init__(self, app: Any):
        self.app = app

    def rules(self) -> list[tuple[str, str, str]]:
        """(rule, HTTP method, handler name) of every control route."""
        return [
            ("/_fake/health", "GET", "health"),
            ("/_fake/reset", "POST", "reset"),
            ("/_fake/config", "GET", "get_config"),
            ("/_fake/config", "POST", "set_config"),
            ("/_fake/users", "POST", "create_user"),
            ("/_fake/users/<email>/messages", "POST", "deliver"),
            ("/_fake/users/<email>/messages", "GET", "list_messages"),
            ("/_fake/users/<email>/sent", "GET", "list_sent"),
            ("/_fake/users/<email>/invalidate-tokens", "POST", "invalidate_tokens"),
            ("/_fake/users/<email>/expire-access-tokens", "POST", "expire_access_tokens"),
            ("/_fake/users/<email>/expire-history", "POST", "expire_history"),
            ("/_fake/oauth/clients", "POST", "register_client"),
            ("/_fake/oauth/approve-as", "POST", "approve_as"),
            ("/_fake/oauth/tokens", "POST", "mint_tokens"),
            ("/_fake/faults", "GET", "get_faults"),
            ("/_fake/faults", "POST", "set_faults"),
            ("/_fake/stats", "GET", "stats"),
            ("/_fake/stats/reset", "POST", "reset_stats"),
            ("/_fake/notifications", "GET", "notifications"),
            ("/_fake/routes", "GET", "routes"),
            ("/_fake/behaviour", "GET", "get_behaviour"),
            ("/_fake/behaviour", "POST", "set_behaviour"),
            ("/_fake/users/<email>/threads/<thread_id>/delete", "POST", "delete_thread"),
            ("/_fake/notifications", "POST", "set_notifications"),
            ("/_fake/users/<email>/send-as", "POST", "add_send_as"),
            ("/_fake/oidc/token", "POST", "oidc_token"),
        ]

    def handle(self, request: Request, name: str, args: dict[str, str]) -> Response:
        try:
            result = getattr(self, name)(request, **args)
        except ControlError as error:
            return json_response({"error": str(error)}, error.status)
        except GoogleApiError as error:
            return json_response({"error": error.message}, error.code)
        if isinstance(result, Response):
            return result
        return json_response(result)

    def _mailbox(self, email: str) -> Any:
        mailbox = self.app.mailboxes.get(email.lower())
        if mailbox is None:
            raise ControlError(404, f"no such account: {email}")
        return mailbox

    # ----- routes -------------------------------------------------------------------------------

    def health(self, request: Request) -> dict[str, Any]:
        return {"ok": True}

    def reset(self, request: Request) -> dict[str, Any]:
        self.app.reset()
        return {"ok": True}

    def get_config(self, request: Request) -> dict[str, Any]:
        return {"quota_per_minute": self.app.quota.per_minute,
                "quota_per_project_per_minute": self.app.quota.project_per_minute,
                "quota_window_seconds": self.app.quota.window_seconds}

    def set_config(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        if "quota_per_minute" in body:
            value = body["quota_per_minute"]
            if not isinstance(value, int) or value < 1:
                raise ControlError(400, "quota_per_minute must be a positive integer")
            self.app.quota.per_minute = value
        if "quota_per_project_per_minute" in body:
            value = body["quota_per_project_per_minute"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ControlError(400, "quota_per_project_per_minute must be a positive integer")
            self.app.quota.project_per_minute = value
        if "quota_window_seconds" in body:
            value = body["quota_window_seconds"]
            if not isinstance(value, (int, float)) or value <= 0:
                raise ControlError(400, "quota_window_seconds must be positive")
            self.app.quota.window_seconds = float(value)
        return self.get_config(request)

    def create_user(self, request: Request) -> Response:
        body = _body(request)
        email = body.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise ControlError(400, "email is required")
        hd = body.get("hd")
        if "hd" in body and hd is not None and (not isinstance(hd, str) or not hd.strip()):
            raise ControlError(400, "hd must be a domain name or null")
        mailbox, created = self.app.create_mailbox(email, body.get("name"))
        if "hd" in body:
            mailbox.hd_set, mailbox.hd = True, hd.strip().lower() if hd else None
        return json_response({"email": mailbox.email, "name": mailbox.name,
                              "historyId": str(mailbox.history_id), "created": created,
                              "hd": self.app.account_hd(mailbox.email)})

    def deliver(self, request: Request, email: str) -> Response:
        mailbox = self._mailbox(email)
        raw = request.get_data()
        if not raw.strip():
            raise ControlError(400, "the body must be a raw RFC 822 message")
        labels_arg = request.args.get("labelIds")
        labels = ["INBOX", "UNREAD"] if labels_arg is None else [
            label for label in labels_arg.split(",") if label]
        label_ids = mailbox.check_label_ids(labels, applying=False)
        if "SPAM" in label_ids and ("INBOX" in label_ids or "TRASH" in label_ids):
            # Gmail files a delivered message in one place: Spam, or the inbox (or trash)
            raise ControlError(400, "a message is delivered to SPAM or to INBOX/TRASH, not both")
        verdict = request.args.get("authentication", "pass")
        if verdict not in AUTHENTICATION_VERDICTS:
            raise ControlError(400, "authentication must be pass, fail or none")
        if verdict != "none":
            raw = prepend_header(raw, "Authentication-Results", authentication_results(raw, verdict))
        internal_date = request.args.get("internalDate")
        if internal_date is not None and not internal_date.isdigit():
            raise ControlError(400, "internalDate must be milliseconds since the epoch")
        message = mailbox.add_message(raw, label_ids,
                                      int(internal_date) if internal_date else None,
                                      request.args.get("threadId"))
        return json_response({"id": message.id, "threadId": message.thread_id,
                              "historyId": str(message.history_id)})

    def list_messages(self, request: Request, email: str) -> list[dict[str, Any]]:
        mailbox = self._mailbox(email)
        return [{"id": m.id, "threadId": m.thread_id, "labelIds": list(m.label_ids),
                 "historyId": str(m.history_id)} for m in mailbox.newest_first()]

    def list_sent(self, request: Request, email: str) -> list[dict[str, Any]]:
        mailbox = self._mailbox(email)
        return [{"id": m.id, "threadId": m.thread_id, "raw": b64url(m.raw)}
                for m in (mailbox.messages[i] for i in mailbox.sent_ids)]

    def invalidate_tokens(self, request: Request, email: str) -> dict[str, Any]:
        self._mailbox(email)
        return {"revoked": self.app.oauth.revoke_account(email)}

    def expire_access_tokens(self, request: Request, email: str) -> dict[str, Any]:
        self._mailbox(email)
        return {"expired": self.app.oauth.expire_access_tokens(email)}

    def expire_history(self, request: Request, email: str) -> dict[str, Any]:
        return {"historyId": str(self._mailbox(email).expire_history())}

    def register_client(self, request: Request) -> Response:
        body = _body(request)
        client_id, client_secret = body.get("client_id"), body.get("client_secret")
        redirect_uris = body.get("redirect_uris") or []
        if not client_id or not client_secret or not isinstance(redirect_uris, list):
            raise ControlError(400, "client_id, client_secret and redirect_uris are required")
        self.app.oauth.register_client(client_id, client_secret, redirect_uris)
        return json_response({"client_id": client_id, "redirect_uris": redirect_uris})

    def approve_as(self, request: Request) -> dict[str, Any]:
        email = _body(request).get("email")
        if email is not None:
            self._mailbox(email)
            email = email.lower()
        self.app.oauth.approve_as = email
        return {"email": email}

    def mint_tokens(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        mailbox = self._mailbox(body.get("email") or "")
        scopes = body.get("scopes") or ["https://mail.google.com/"]
        return self.app.oauth.mint(mailbox.email, body.get("client_id") or "", scopes)

    def get_faults(self, request: Request) -> dict[str, Any]:
        return self.app.faults.as_json()

    def set_faults(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        rate = body.get("error_rate", 0)
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ControlError(400, "error_rate must be between 0 and 1")
        return self.app.faults.configure(body)

    def stats(self, request: Request) -> dict[str, Any]:
        users = {email: self.app.quota.user(email).as_json() for email in self.app.mailboxes}
        for email, stats in self.app.quota.stats.items():
            users.setdefault(email, stats.as_json())
        return {
            "users": users,
            "secrets": len(self.app.secret_manager.secrets),
            "secret_accesses": self.app.secret_manager.access_count,
            "notifications": len(self.app.notifier.published),
            "notifications_dropped": self.app.notifier.dropped,
            "project": self.app.quota.project_json(),
        }

    def reset_stats(self, request: Request) -> dict[str, Any]:
        self.app.quota.reset_counters()
        self.app.secret_manager.access_count = 0
        return {"ok": True}

    def notifications(self, request: Request) -> list[dict[str, Any]]:
        return list(self.app.notifier.published)

    def routes(self, request: Request) -> list[dict[str, Any]]:
        return self.app.served_routes()

    def get_behaviour(self, request: Request) -> dict[str, Any]:
        return self.app.behaviour.as_json()

    def set_behaviour(self, request: Request) -> dict[str, Any]:
        try:
            return self.app.behaviour.configure(_body(request))
        except BehaviourError as error:
            raise ControlError(400, str(error))

    def delete_thread(self, request: Request, email: str, thread_id: str) -> dict[str, Any]:
        deleted = self._mailbox(email).delete_thread(thread_id)
        return {"threadId": thread_id, "deleted": deleted}

    def set_notifications(self, request: Request) -> dict[str, Any]:
        paused = _body(request).get("paused")
        if not isinstance(paused, bool):
            raise ControlError(400, "paused must be true or false")
        self.app.notifier.paused = paused
        return {"paused": paused}

    def add_send_as(self, request: Request, email: str) -> dict[str, Any]:
        mailbox = self._mailbox(email)
        body = _body(request)
        address, status = body.get("sendAsEmail"), body.get("verificationStatus", "accepted")
        if not isinstance(address, str) or "@" not in address:
            raise ControlError(400, "sendAsEmail must be an email address")
        if address.lower() == mailbox.email:
            raise ControlError(400, "sendAsEmail is the primary address, which is always listed")
        if status not in SEND_AS_STATUSES:
            raise ControlError(400, "verificationStatus must be accepted or pending")
        display_name = body.get("displayName", "")
        if not isinstance(display_name, str):
            raise ControlError(400, "displayName must be a string")
        return mailbox.add_send_as(address.strip(), status, display_name)

    def oidc_token(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        account, audience = body.get("service_account"), body.get("audience")
        if not isinstance(account, str) or "@" not in account:
            raise ControlError(400, "service_account must be a service account email")
        if not isinstance(audience, str) or not audience:
            raise ControlError(400, "audience is required (the receiving URL)")
        return {"token": self.app.oauth.service_account_token(account.lower(), audience)}


def authentication_results(raw: bytes, verdict: str) -> str:
    """The header Google's MX puts on top of delivered mail, for the From domain."""
    senders = parse(raw).from_addresses
    sender = senders[0] if senders else "unknown@invalid"
    domain = sender.rsplit("@", 1)[-1]
    if verdict == "pass":
        return (f"mx.google.com;\n       dkim=pass header.i=@{domain} header.s=selector1 "
                f"header.b=fakeSig0;\n       spf=pass (google.com: domain of {sender} designates "
                f"192.0.2.25 as permitted sender) smtp.mailfrom={sender};\n       "
                f"dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from={domain}")
    return (f"mx.google.com;\n       dkim=fail header.i=@{domain} header.s=selector1 "
            f"header.b=fakeSig0;\n       spf=fail (google.com: domain of {sender} does not "
            f"designate 192.0.2.66 as permitted sender) smtp.mailfrom={sender};\n       "
            f"dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from={domain}")
