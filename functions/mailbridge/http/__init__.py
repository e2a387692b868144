"""The HTTP edge: mailbridge.http.functions holds the handlers functions/main.py exposes."""
