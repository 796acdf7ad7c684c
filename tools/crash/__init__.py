"""Crash harness: kill vecledger at random instants under a write load and check what survived.

Why: the design promises that a write acknowledged with HTTP 200 is in the log and so survives any
crash, that one PutVectors/DeleteVectors call is one log event (all of it or none of it after a
crash), and that a materializer killed at any point resumes and folds the log into Lance again,
idempotently. Unit tests check each piece; this checks the promise end to end, with real
processes, real SIGKILLs and real object stores (a folder, or S3 through moto).

Two kinds of iteration, each one kill:

* server kill: ``vecledger serve`` runs; 2-3 writer threads (each owning a disjoint range of keys)
  overwrite and delete keys with values that encode (writer, op number); the server is SIGKILLed at
  a random instant, restarted on the same root, and every key is read back (GetVectors, ListVectors,
  QueryVectors) and checked against what was acknowledged; then the materializer must catch up
  (checkpoint seq = last log seq) and the reads must still agree.
* materializer kill: the API runs with ``--no-materialize`` and a standalone ``vecledger materialize``
  is SIGKILLed by a failpoint between its Lance commit and its checkpoint, or while it builds an
  IVF index (on a fresh index with enough rows); a clean materializer is restarted and must catch
  up, reads must be right and ``vecledger replay --check`` must agree.

Everything random (kill instants, batches, keys) comes from one seeded generator, so a failing seed
replays the same schedule (thread timing aside). Usage::

    python -m tools.crash --iterations 200 --backend local --seed 1
    python -m tools.crash --iterations 100 --backend s3        # starts an in-process moto server
"""

from __future__ import annotations

from tools.crash.model import Model, Op, Stats
from tools.crash.procs import Root
from tools.crash.runner import main, run

__all__ = ["Model", "Op", "Root", "Stats", "main", "run"]
