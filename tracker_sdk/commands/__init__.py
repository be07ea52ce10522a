"""One module per `tracker` subcommand (see tracker_sdk/cli.py)."""
