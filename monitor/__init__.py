"""wirewatch: a multilingual media monitor (feeds in, keyword alerts out)."""

__version__ = "0.1.0"
