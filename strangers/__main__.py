"""``python -m strangers`` runs the CLI."""

from strangers.cli.main import entry

entry()
