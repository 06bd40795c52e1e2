"""API tests: through the ASGI app with a real token."""
