"""Run the fake Google server: ``python tests/fakes/server.py --host 127.0.0.1 --port PORT``.

Serves Gmail API v1, OAuth 2.0, Secret Manager v1 (REST) and the ``/_fake`` control plane from
one multi-threaded process. ``GET /_fake/health`` answers ``{"ok": true}`` once it listens.
Env ``PUBSUB_EMULATOR_HOST`` (optional) makes Gmail watch publish notifications.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make `tests.fakes` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.fakes.app import FakeGoogle
    from tests.fakes.behaviour import Behaviour, BehaviourError
    from tests.fakes.limits import DEFAULT_QUOTA_PER_MINUTE
else:
    from .app import FakeGoogle
    from .behaviour import Behaviour, BehaviourError
    from .limits import DEFAULT_QUOTA_PER_MINUTE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True,
                        help="port to listen on (callers pick a free one; 0 is refused)")
    parser.add_argument("--quota-per-minute", type=int, default=DEFAULT_QUOTA_PER_MINUTE,
                        help="Gmail quota units per user per rolling minute")
    parser.add_argument("--behaviour", default=os.environ.get("FAKE_GOOGLE_BEHAVIOUR", ""),
                        help='JSON of POST /_fake/behaviour keys that become the defaults '
                             '/_fake/reset restores, e.g. \'{"replace_message_id": true}\' '
                             "(default: $FAKE_GOOGLE_BEHAVIOUR, else Gmail's strict behaviour)")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request (paths only; never bodies or headers)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    try:
        behaviour = json.loads(args.behaviour) if args.behaviour.strip() else {}
        if not isinstance(behaviour, dict):
            raise ValueError("expected a JSON object")
        Behaviour(behaviour)
    except (ValueError, BehaviourError) as error:
        parser.error(f"--behaviour: {error}")

    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # werkzeug logs query strings, which may carry a token (/revoke?token=...): quiet by default.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    app = FakeGoogle(quota_per_minute=args.quota_per_minute, behaviour=behaviour,
                     pubsub_emulator_host=os.environ.get("PUBSUB_EMULATOR_HOST"))
    server = make_server(args.host, args.port, app, threaded=True)
    # Keep-alive clients (httplib2) must not hold request threads forever after a test ends.
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"fake google listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
