"""The CLI (scripts/mailbridge), one module per command group; cli.app assembles them."""

from mailbridge.cli.app import cli, main, parse_since

__all__ = ["cli", "main", "parse_since"]
