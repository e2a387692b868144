"""Domain logic of mailbridge: pure code (stdlib and a few pure libraries), no Google clients."""
