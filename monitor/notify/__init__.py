"""Notification adapters: hand rendered messages to channels (Apprise)."""
