"""A fake Google (Gmail API, OAuth 2.0, Secret Manager) for tests, the demo and benchmarks.

Run it with ``python tests/fakes/server.py --host 127.0.0.1 --port PORT``; see server.py.
"""
