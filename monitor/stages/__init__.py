"""The pipeline's stages: each a loop over a bounded queue with its own executor and batch size.

```
claim (control pool) ─▶ fetch (asyncio: the feed poller, Scrapy) ─▶ IngestStage ─▶ dispatch (own pool)
                           │ one PollOutcome per source                (one writer thread,
                           └── waits on nothing but the network        batches across polls)
```

A stage never reaches back into an earlier one and never waits on another's I/O: the
fetchers hand outcomes to the ingest queue and go on (a full queue is the only thing
that slows them, on purpose), the single ingest writer commits batches of polls, and
claims, lease renewals and dispatch run on executors of their own so a long ingest
cannot starve them.  This package knows no database and no crawler: the composition
root (monitor/daemon.py) hands it callables.
"""
