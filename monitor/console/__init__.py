"""The operator console: a small ASGI app (Starlette, Jinja2 templates, SVG charts) served on ``[server] listen``."""
