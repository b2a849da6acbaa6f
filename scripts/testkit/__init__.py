"""Helpers for the scripts that run the service for real: the server, nginx, a TCP relay, a page server."""
