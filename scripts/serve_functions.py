#!/usr/bin/env python3
"""Serve every `@functions_framework.http` function of functions/main.py under one base URL.

Each function gets its own functions-framework app mounted at `/<name>`, the same shape as
`https://REGION-PROJECT.cloudfunctions.net/<name>`: inside the function `request.path` is `/`
relative to the mount (SCRIPT_NAME carries `/<name>`), and method, query, body and headers pass
through untouched. `GET /_health` answers 200 with the list of functions.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path

REPO = Path(os.path.abspath(__file__)).parent.parent
DEFAULT_SOURCE = REPO / "functions" / "main.py"


def _is_http_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):  # @functions_framework.http
        return target.attr == "http" and isinstance(target.value, ast.Name) and target.value.id == "functions_framework"
    return isinstance(target, ast.Name) and target.id == "http"  # from functions_framework import http


def discover_http_functions(source: Path) -> list[str]:
    """Names of the top-level functions decorated with functions_framework.http, in file order."""
    tree = ast.parse(source.read_text(), filename=str(source))
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(_is_http_decorator(d) for d in node.decorator_list)]


def _root_path(app):
    """`/oauth_callback?code=…` reaches the function as `/`, as on Cloud Functions (no 308 to `/oauth_callback/`)."""

    def wsgi(environ, start_response):
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return app(environ, start_response)

    return wsgi


def build_app(source: Path, names: list[str]):
    import functions_framework
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    mounts = {f"/{name}": _root_path(functions_framework.create_app(target=name, source=str(source)))
              for name in names}
    listing = json.dumps({"ok": True, "functions": names}).encode()

    def root(environ, start_response):
        if environ.get("PATH_INFO") == "/_health":
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(listing)))])
            return [listing]
        body = json.dumps({"error": "no such function", "functions": names}).encode()
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return DispatcherMiddleware(root, mounts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args(argv)

    source = args.source.resolve()
    if not source.is_file():
        print(f"serve_functions: {source} does not exist", file=sys.stderr)
        return 1
    names = discover_http_functions(source)
    if not names:
        print(f"serve_functions: no @functions_framework.http function in {source}", file=sys.stderr)
        return 1
    # Like Cloud Functions: the source folder is the working directory and on sys.path.
    os.chdir(source.parent)
    sys.path.insert(0, str(source.parent))
    app = build_app(source, names)

    from werkzeug.serving import WSGIRequestHandler, run_simple

    class PathOnlyLog(WSGIRequestHandler):
        """Access lines without query strings: OAuth codes and signed links travel there."""

        def log_request(self, code="-", size="-"):
            path = self.path.split("?", 1)[0]
            self.log("info", '"%s %s" %s %s', self.command, path, str(code), str(size))

    print(f"serve_functions: http://{args.host}:{args.port}/{{{','.join(names)}}}", file=sys.stderr, flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False,
               request_handler=PathOnlyLog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
