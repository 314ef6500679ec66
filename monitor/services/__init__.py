"""Services: ingest (poll outcome → items, matches, alerts) and dispatch (outbox → channels)."""
