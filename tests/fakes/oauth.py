"""Fake Google OAuth 2.0: authorize + consent page, token, revoke, userinfo, id_token and certs.

Follows Google's web-server flow as observed: exact redirect_uri matching, PKCE (S256),
single-use codes valid 10 minutes, refresh tokens only for ``access_type=offline`` (and, like
Google, only on first consent or with ``prompt=consent``), ``invalid_grant`` after revocation
or a password change, and RS256 id_tokens verifiable against ``/oauth2/v1/certs``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request, Response

from .errors import GoogleApiError, json_response

ISSUER = "https://accounts.google.com"
ACCESS_TOKEN_SECONDS = 3599
CODE_SECONDS = 600
CONSENT_SECONDS = 600
MAX_REFRESH_TOKENS_PER_CLIENT_ACCOUNT = 100
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
PROFILE_SCOPE = "https://www.googleapis.com/auth/userinfo.profile"
# Google answers with the long names of the short scopes a client asked for.
SCOPE_ALIASES = {"email": EMAIL_SCOPE, "profile": PROFILE_SCOPE}
CONSUMER_DOMAINS = ("gmail.com", "googlemail.com")


def normalize_scopes(scopes: list[str]) -> list[str]:
    result: list[str] = []
    for scope in scopes:
        scope = SCOPE_ALIASES.get(scope, scope)
        if scope not in result:
            result.append(scope)
    return result


def _valid_scope(scope: str) -> bool:
    return scope in ("openid", "email", "profile") or scope.startswith(
        ("https://www.googleapis.com/auth/", "https://mail.google.com/")
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def subject_for(email: str) -> str:
    """A stable numeric 'sub' per account, shaped like Google's 21-digit ids."""
    return "1" + str(int(hashlib.sha256(email.lower().encode()).hexdigest(), 16))[:20]


def hosted_domain(email: str) -> str | None:
    domain = email.rsplit("@", 1)[-1].lower()
    return None if domain in CONSUMER_DOMAINS else domain


class OAuthError(Exception):
    """An error of the token/revoke endpoints: ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> Response:
        return json_response({"error": self.error, "error_description": self.description},
                             self.status)


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class AuthorizationRequest:
    """What the consent page is approving (kept server side, keyed by a transaction id)."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    code_challenge: str | None
    access_type: str
    prompt: str
    login_hint: str
    nonce: str | None
    include_granted_scopes: bool
    created: float = field(default_factory=time.time)


@dataclass
class Code:
    request: AuthorizationRequest
    email: str
    scopes: list[str]
    expires: float
    used: bool = False


@dataclass
class Token:
    value: str
    kind: str  # "access" | "refresh"
    client_id: str
    email: str
    scopes: list[str]
    created: float
    expires: float | None  # None: refresh tokens do not expire on their own
    revoked: bool = False

    def live(self) -> bool:
        return not self.revoked and (self.expires is None or time.time() < self.expires)


class SigningKey:
    """The RSA key id_tokens are signed with, published as an X.509 cert like Google's."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha1(public_der).hexdigest()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-google-id-token")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(self.private_key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()

        def encode_int(value: int) -> str:
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": encode_int(numbers.n), "e": encode_int(numbers.e)}


class OAuthServer:
    """State and endpoints of the fake authorization server."""

    def __init__(self, account_name: Callable[[str], str | None],
                 account_hd: Callable[[str], str | None] = hosted_domain):
        # account_name(email) -> display name, or None when the fake has no such account.
        self._account_name = account_name
        # account_hd(email) -> the Workspace domain ("hd" claim), None for consumer accounts.
        self._account_hd = account_hd
        self.signing_key = SigningKey()
        self.reset()

    def reset(self) -> None:
        self.clients: dict[str, Client] = {}
        self.pending: dict[str, AuthorizationRequest] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.approve_as: str | None = None

    # ----- control ----------------------------------------------------------------------------

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        self.clients[client_id] = Client(client_id, client_secret, list(redirect_uris))

    def revoke_account(self, email: str) -> int:
        """A password change: every token of this account stops working."""
        count = 0
        for token in self.tokens.values():
            if token.email == email.lower() and not token.revoked:
                token.revoked = True
                count += 1
        return count

    def expire_access_tokens(self, email: str) -> int:
        count = 0
        for token in self.tokens.values():
            if token.email == email.lower() and token.kind == "access" and token.live():
                token.expires = time.time() - 1
                count += 1
        return count

    def mint(self, email: str, client_id: str, scopes: list[str]) -> dict[str, Any]:
        """Tokens without the browser dance, for tests that only need a signed-in client."""
        if client_id not in self.clients:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        scopes = normalize_scopes(scopes)
        refresh = self._issue(email.lower(), client_id, scopes, "refresh")
        access = self._issue(email.lower(), client_id, scopes, "access")
        return {"access_token": access.value, "refresh_token": refresh.value,
                "expires_in": ACCESS_TOKEN_SECONDS, "scope": " ".join(scopes),
                "token_type": "Bearer"}

    # ----- tokens -----------------------------------------------------------------------------

    def _issue(self, email: str, client_id: str, scopes: list[str], kind: str) -> Token:
        now = time.time()
        prefix = "ya29.fake-" if kind == "access" else "1//fake-"
        token = Token(
            value=prefix + secrets.token_urlsafe(32),
            kind=kind,
            client_id=client_id,
            email=email,
            scopes=list(scopes),
            created=now,
            expires=now + ACCESS_TOKEN_SECONDS if kind == "access" else None,
        )
        self.tokens[token.value] = token
        if kind == "refresh":
            live = sorted(
                (t for t in self.tokens.values()
                 if t.kind == "refresh" and t.live() and t.client_id == client_id and t.email == email),
                key=lambda t: t.created,
            )
            # Google silently invalidates the oldest beyond 100 per client per account.
            for stale in live[:-MAX_REFRESH_TOKENS_PER_CLIENT_ACCOUNT]:
                stale.revoked = True
        return token

    def authenticate(self, authorization: str | None, query_token: str | None = None) -> Token:
        """The access token of a bearer request, or a 401 in Google's API error shape."""
        value = None
        if authorization and authorization.lower().startswith("bearer "):
            value = authorization[7:].strip()
        elif query_token:
            value = query_token
        if not value:
            raise GoogleApiError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                reason="required",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        token = self.tokens.get(value)
        if token is None or token.kind != "access" or not token.live():
            raise GoogleApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                reason="authError",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                                             'error="invalid_token"'},
            )
        return token

    def _id_token(self, email: str, client_id: str, scopes: list[str], nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "azp": client_id,
            "aud": client_id,
            "sub": subject_for(email),
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        }
        domain = self._account_hd(email)
        if domain:
            claims["hd"] = domain
        if nonce:
            claims["nonce"] = nonce
        if PROFILE_SCOPE in scopes:
            claims["name"] = self._account_name(email) or email
        return self.signing_key.sign(claims)

    def _token_response(self, email: str, client_id: str, scopes: list[str],
                        with_refresh: bool, nonce: str | None = None) -> dict[str, Any]:
        access = self._issue(email, client_id, scopes, "access")
        body: dict[str, Any] = {
            "access_token": access.value,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if with_refresh:
            body["refresh_token"] = self._issue(email, client_id, scopes, "refresh").value
        if "openid" in scopes or EMAIL_SCOPE in scopes:
            body["id_token"] = self._id_token(email, client_id, scopes, nonce)
        return body

    def _client_from(self, request: Request) -> Client:
        client_id = request.form.get("client_id")
        client_secret = request.form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            # RFC 6749 §2.3.1: both halves are form-urlencoded inside the Basic credentials.
            client_id = urllib.parse.unquote_plus(request.authorization.username or "")
            client_secret = urllib.parse.unquote_plus(request.authorization.password or "")
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not client_secret or not secrets.compare_digest(client_secret, client.client_secret):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return client

    def token(self, request: Request) -> Response:
        try:
            client = self._client_from(request)
            grant_type = request.form.get("grant_type")
            if grant_type == "authorization_code":
                return json_response(self._exchange_code(client, request))
            if grant_type == "refresh_token":
                return json_response(self._refresh(client, request))
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        except OAuthError as error:
            return error.response()

    def _exchange_code(self, client: Client, request: Request) -> dict[str, Any]:
        value = request.form.get("code")
        if not value:
            raise OAuthError(400, "invalid_request", "Missing required parameter: code")
        code = self.codes.get(value)
        if code is None or code.request.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if code.used:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        code.used = True  # single use even when the rest of the exchange fails, like Google
        if time.time() > code.expires:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        if request.form.get("redirect_uri") != code.request.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if code.request.code_challenge:
            verifier = request.form.get("code_verifier")
            if not verifier:
                raise OAuthError(400, "invalid_grant", "Missing code verifier.")
            expected = _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            if not secrets.compare_digest(expected, code.request.code_challenge):
                raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        with_refresh = code.request.access_type == "offline" and (
            "consent" in code.request.prompt.split() or not self._has_live_refresh(code.email, client)
        )
        return self._token_response(code.email, client.client_id, code.scopes, with_refresh,
                                    nonce=code.request.nonce)

    def _has_live_refresh(self, email: str, client: Client) -> bool:
        return any(t.kind == "refresh" and t.live() and t.email == email
                   and t.client_id == client.client_id for t in self.tokens.values())

    def _refresh(self, client: Client, request: Request) -> dict[str, Any]:
        token = self.tokens.get(request.form.get("refresh_token") or "")
        if token is None or token.kind != "refresh" or not token.live():
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        if token.client_id != client.client_id:
            raise OAuthError(400, "unauthorized_client", "Unauthorized")
        scopes = token.scopes
        requested = request.form.get("scope")
        if requested:
            wanted = normalize_scopes(requested.split())
            if not set(wanted) <= set(token.scopes):
                raise OAuthError(400, "invalid_scope",
                                 "Some requested scopes were invalid or not granted.")
            scopes = wanted
        return self._token_response(token.email, client.client_id, scopes, with_refresh=False)

    def revoke(self, request: Request) -> Response:
        value = request.values.get("token", "")
        token = self.tokens.get(value)
        if token is None or not token.live():
            return OAuthError(400, "invalid_token", "Token expired or revoked").response()
        # Revoking any token removes the app's whole grant for that account.
        for other in self.tokens.values():
            if other.client_id == token.client_id and other.email == token.email:
                other.revoked = True
        return json_response({})

    def userinfo(self, request: Request) -> Response:
        try:
            token = self.authenticate(request.headers.get("Authorization"),
                                      request.args.get("access_token"))
        except GoogleApiError:
            return json_response({"error": "invalid_request",
                                  "error_description": "Invalid Credentials"}, 401)
        info: dict[str, Any] = {"sub": subject_for(token.email)}
        if EMAIL_SCOPE in token.scopes:
            info.update(email=token.email, email_verified=True)
            if self._account_hd(token.email):
                info["hd"] = self._account_hd(token.email)
        if PROFILE_SCOPE in token.scopes:
            info["name"] = self._account_name(token.email) or token.email
        return json_response(info)

    def tokeninfo(self, request: Request) -> Response:
        token = self.tokens.get(request.values.get("access_token", ""))
        if token is None or token.kind != "access" or not token.live():
            return json_response({"error": "invalid_token",
                                  "error_description": "Invalid Value"}, 400)
        return json_response({
            "azp": token.client_id, "aud": token.client_id, "sub": subject_for(token.email),
            "scope": " ".join(token.scopes), "exp": str(int(token.expires or 0)),
            "expires_in": str(max(0, int((token.expires or 0) - time.time()))),
            "email": token.email, "email_verified": "true", "access_type": "offline",
        })

    def service_account_token(self, service_account: str, audience: str) -> str:
        """A Google-signed OIDC token for a service account, as Cloud Scheduler or a Pub/Sub
        push subscription sends in ``Authorization: Bearer``."""
        now = int(time.time())
        return self.signing_key.sign({
            "iss": ISSUER, "aud": audience, "azp": subject_for(service_account),
            "sub": subject_for(service_account), "email": service_account,
            "email_verified": True, "iat": now, "exp": now + 3600,
        })

    def openid_configuration(self, request: Request) -> Response:
        """Google's discovery document, with the endpoints on this server; the issuer stays
        Google's because tokens are checked against it."""
        base = request.host_url.rstrip("/")
        return json_response({
            "issuer": ISSUER,
            "authorization_endpoint": base + "/o/oauth2/v2/auth",
            "device_authorization_endpoint": base + "/device/code",
            "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/v1/userinfo",
            "revocation_endpoint": base + "/revoke",
            "jwks_uri": base + "/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "client_secret_basic"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "hd", "iat", "iss",
                                 "name", "sub"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        })

    def certs(self, request: Request) -> Response:
        return json_response({self.signing_key.kid: self.signing_key.certificate_pem},
                             headers={"Cache-Control": "public, max-age=300"})

    def jwks(self, request: Request) -> Response:
        return json_response({"keys": [self.signing_key.jwk()]})

    # ----- authorize + consent ----------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        args = request.args
        client = self.clients.get(args.get("client_id", ""))
        if client is None:
            return _error_page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = args.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered URI: that is how codes get stolen.
            return _error_page(
                400, "redirect_uri_mismatch",
                f"You can't sign in to this app because it doesn't comply with Google's OAuth "
                f"2.0 policy. redirect_uri={redirect_uri}",
            )
        if args.get("response_type") != "code":
            return _error_page(400, "unsupported_response_type",
                               f"Unsupported response type: {args.get('response_type')}")
        raw_scopes = (args.get("scope") or "").split()
        if not raw_scopes:
            return _error_page(400, "invalid_request", "Missing required parameter: scope")
        invalid = [scope for scope in raw_scopes if not _valid_scope(scope)]
        if invalid:
            return _error_page(400, "invalid_scope", "Some requested scopes were invalid. "
                               + " ".join(invalid))
        code_challenge = args.get("code_challenge")
        if code_challenge and args.get("code_challenge_method") != "S256":
            return _error_page(400, "invalid_request",
                               "code_challenge_method must be S256 when code_challenge is sent.")
        if args.get("code_challenge_method") and not code_challenge:
            return _error_page(400, "invalid_request", "Missing code_challenge.")
        access_type = args.get("access_type", "online")
        if access_type not in ("online", "offline"):
            return _error_page(400, "invalid_request", f"Invalid access_type: {access_type}")
        prompt = args.get("prompt", "")
        if any(p not in ("none", "consent", "select_account") for p in prompt.split()):
            return _error_page(400, "invalid_request", f"Invalid prompt: {prompt}")
        auth_request = AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=normalize_scopes(raw_scopes),
            state=args.get("state"),
            code_challenge=code_challenge,
            access_type=access_type,
            prompt=prompt,
            login_hint=args.get("login_hint", ""),
            nonce=args.get("nonce"),
            include_granted_scopes=args.get("include_granted_scopes") == "true",
        )
        if self.approve_as:
            return self._approve(auth_request, self.approve_as, auth_request.scopes)
        if "none" in prompt.split():
            return _redirect(auth_request, {"error": "interaction_required"})
        transaction = secrets.token_urlsafe(16)
        self.pending[transaction] = auth_request
        return _consent_page(transaction, auth_request, client_label=client.client_id)

    def consent(self, request: Request) -> Response:
        transaction = request.form.get("transaction", "")
        auth_request = self.pending.get(transaction)
        if auth_request is None or time.time() - auth_request.created > CONSENT_SECONDS:
            self.pending.pop(transaction, None)
            return _error_page(400, "invalid_request", "This sign-in request has expired.")
        if request.form.get("action") == "deny":
            del self.pending[transaction]
            return _redirect(auth_request, {"error": "access_denied"})
        email = (request.form.get("email") or "").strip().lower()
        granted = [s for s in request.form.getlist("scope") if s in auth_request.scopes]
        if not email or self._account_name(email) is None:
            return _consent_page(transaction, auth_request, auth_request.client_id,
                                 error="Couldn't find your Google Account", email=email)
        if not granted:
            return _consent_page(transaction, auth_request, auth_request.client_id,
                                 error="Select at least one permission", email=email)
        del self.pending[transaction]
        return self._approve(auth_request, email, granted)

    def _approve(self, auth_request: AuthorizationRequest, email: str, scopes: list[str]) -> Response:
        email = email.lower()
        if self._account_name(email) is None:
            return _error_page(400, "invalid_request", f"No such account: {email}")
        if auth_request.include_granted_scopes:
            for token in self.tokens.values():
                if (token.kind == "refresh" and token.live() and token.email == email
                        and token.client_id == auth_request.client_id):
                    scopes = normalize_scopes(scopes + token.scopes)
        value = "4/fake-" + secrets.token_urlsafe(32)
        self.codes[value] = Code(auth_request, email, scopes, time.time() + CODE_SECONDS)
        return _redirect(auth_request, {"code": value, "scope": " ".join(scopes),
                                        "authuser": "0", "prompt": "consent"})


def _redirect(auth_request: AuthorizationRequest, params: dict[str, str]) -> Response:
    if auth_request.state is not None:
        params = {"state": auth_request.state, **params}
    separator = "&" if "?" in auth_request.redirect_uri else "?"
    location = auth_request.redirect_uri + separator + urllib.parse.urlencode(params)
    return Response("", status=302, headers={"Location": location})


_PAGE_STYLE = (
    "body{font-family:Roboto,Arial,sans-serif;max-width:32rem;margin:3rem auto;color:#202124}"
    "label{display:block;margin:.4rem 0}.error{color:#d93025}button{margin-right:.5rem}"
)


def _error_page(status: int, error: str, description: str) -> Response:
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Error {status} ({html.escape(error)})</title><style>{_PAGE_STYLE}</style></head>"
        f"<body><h1>Access blocked: authorization error</h1><p class=error>Error {status}: "
        f"{html.escape(error)}</p><p>{html.escape(description)}</p></body></html>"
    )
    return Response(body, status=status, content_type="text/html; charset=utf-8")


_SCOPE_DESCRIPTIONS = {
    "openid": "Associate you with your personal info on Google",
    # No "Account" in these texts: a label containing it would make "Account" ambiguous.
    EMAIL_SCOPE: "See your primary email address",
    PROFILE_SCOPE: "See your personal info, including any personal info you've made public",
    "https://mail.google.com/": "Read, compose, send, and permanently delete all your email "
                                "from Gmail",
}


def _consent_page(transaction: str, auth_request: AuthorizationRequest, client_label: str,
                  error: str | None = None, email: str | None = None) -> Response:
    account = email if email is not None else auth_request.login_hint
    boxes = "".join(
        f'<label><input type="checkbox" name="scope" value="{html.escape(scope)}" checked> '
        f"{html.escape(_SCOPE_DESCRIPTIONS.get(scope, scope))} "
        f"<code>{html.escape(scope)}</code></label>"
        for scope in auth_request.scopes
    )
    error_html = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Sign in - Google Accounts</title><style>{_PAGE_STYLE}</style></head><body>"
        "<main><h1>Sign in with Google</h1>"
        f"<p><strong>{html.escape(client_label)}</strong> wants to access your Google Account</p>"
        f"{error_html}"
        '<form method="post" action="/o/oauth2/consent">'
        f'<input type="hidden" name="transaction" value="{html.escape(transaction)}">'
        '<label for="email">Account</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" '
        f'value="{html.escape(account)}">'
        f"<fieldset><legend>This will allow the app to</legend>{boxes}</fieldset>"
        '<button type="submit" name="action" value="allow">Allow</button>'
        '<button type="submit" name="action" value="deny">Deny</button>'
        "</form></main></body></html>"
    )
    return Response(body, status=200, content_type="text/html; charset=utf-8")
