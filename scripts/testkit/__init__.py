"""What the scripts that run the service for real share: the server, nginx, a TCP relay, a page server."""
