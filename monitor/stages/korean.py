"""Imported by the CPU pool's forkserver when the config watches Korean text: loads kiwipiepy's model.

A forkserver runs the imports it is given (``set_forkserver_preload``) once, and every
worker process forks from it afterwards, so a model loaded here is loaded once for all
of them, its pages shared until written, instead of once in each worker at its first
Hangul word (~1.1 CPU s and ~330 MiB each).  Importing this module is the only way to
ask a forkserver to run something; it does nothing else.
"""

from __future__ import annotations

from monitor.core.text import load_korean

load_korean()
