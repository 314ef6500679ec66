"""Spiders: ``feeds`` polls feed sources; site-specific spiders live beside it."""
