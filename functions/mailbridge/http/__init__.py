"""The HTTP edge, one module per Cloud Function so an instance loads only its own code (cold
start): oauth (oauth_start, oauth_callback), poll, labels, admin (the pages), push. Each module's
handler takes the flask request and returns a response; functions/main.py calls them."""
