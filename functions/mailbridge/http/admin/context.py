"""One admin request: where the function is mounted, its services, the session, the CSP."""

from __future__ import annotations

from urllib.parse import urlencode, urlparse

from mailbridge.http.common import services

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def _origin(url: str) -> str:
    parsed = urlparse(url or "")
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme and parsed.netloc else ""


class Ctx:
    """One request: where the function is mounted, its services, the session."""

    def __init__(self, request):
        self.request = request
        self.services = services()
        self.settings = self.services.settings
        self.session = None
        self.session_key = None
        self.base, self.path = self._mount(request)

    def _mount(self, request):
        path = request.path or "/"
        base = (request.script_root or "").rstrip("/")
        if path == "/admin" or path.startswith("/admin/"):  # mounted under one base URL, prefix kept
            base, path = base + "/admin", path[len("/admin"):] or "/"
        if not base and self.settings.functions_url:
            functions = urlparse(self.settings.functions_url)
            if functions.netloc == request.host:  # the platform stripped the function name
                base = functions.path.rstrip("/") + "/admin"
        return base, path

    def url(self, path: str = "/", **query) -> str:
        query = {k: v for k, v in query.items() if v not in (None, "")}
        return self.base + path + (("?" + urlencode(query)) if query else "")

    @property
    def secure(self) -> bool:
        host = (self.request.host or "").rsplit(":", 1)[0] if not (self.request.host or "").startswith("[") \
            else (self.request.host or "").split("]")[0] + "]"
        return host not in LOCAL_HOSTS

    @property
    def cookie_name(self) -> str:
        return "__Host-mailbridge_admin" if self.secure else "mailbridge_admin"

    def form(self, name: str, default: str = "") -> str:
        return self.request.form.get(name, default)

    @property
    def csrf(self) -> str:
        return (self.session or {}).get("csrf", "")

    def csp(self) -> str:
        form_targets = {"'self'"}
        for url in (self.settings.functions_url, self.settings.oauth_auth_url or "https://accounts.google.com",
                    *self.settings.function_urls.values()):
            if _origin(url):
                form_targets.add(_origin(url))
        return ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
                "frame-src 'self'; connect-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                f"form-action {' '.join(sorted(form_targets))}")
