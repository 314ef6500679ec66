"""wirewatch's benchmark suite: a generated news web on a loopback nginx, and the harness that measures it.

Run it with ``bash benchmarks/run.sh`` (see benchmarks/README.md).  Nothing here is imported by
wirewatch itself; the suite drives wirewatch only through its command line, like an operator.
"""
