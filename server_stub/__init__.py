"""The tracking server: serves the run format over HTTP (``tracker-server``) for sync and the viewer."""

from .app import create_app, main

__all__ = ["create_app", "main"]
