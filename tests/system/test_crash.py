"""Crash tests: SIGKILL servers and materializers under load, on both backends (``tools/crash/``).

Why: an acknowledged write must survive any crash, a call in flight at the crash must be all or
nothing, and a materializer killed anywhere must resume and agree with a fresh fold of the log.
The harness checks these end to end with real processes; the first tests here show that its
checks can fail (a harness that cannot fail proves nothing), the last runs it: 36 kills in all.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tools import crash
from tools.crash import Model, Op, Root, Stats

# 19 kills per backend (12 servers, 7 materializers: one at each of the harness's failpoints);
# both backends run at once (their processes mostly wait: server start-up, lease expiry), which
# keeps CI near 2 minutes.
ITERATIONS = 19
MATERIALIZER_KILLS = 7


def _model() -> Model:
    return Model(["w0-0000", "w0-0001", "w0-0002"])


def test_acknowledged_write_must_be_visible() -> None:
    m = _model()
    m.ops = [Op(0, 1, "put", ("w0-0000", "w0-0001"), acked=True)]
    assert m.check({"w0-0000": (0, 1), "w0-0001": (0, 1), "w0-0002": None}, "t") == []
    lost = m.check({"w0-0000": (0, 1), "w0-0001": None, "w0-0002": None}, "t")
    assert len(lost) == 1 and "w0-0001" in lost[0]


def test_acknowledged_delete_must_hide_the_key() -> None:
    m = _model()
    m.state["w0-0000"] = (0, 1)
    m.ops = [Op(0, 2, "delete", ("w0-0000",), acked=True)]
    assert m.check({"w0-0000": None, "w0-0001": None, "w0-0002": None}, "t") == []
    assert m.check({"w0-0000": (0, 1), "w0-0001": None, "w0-0002": None}, "t") != []


def test_in_flight_batch_is_all_or_nothing() -> None:
    m = _model()
    m.ops = [
        Op(0, 1, "put", ("w0-0000", "w0-0001", "w0-0002"), acked=True),
        Op(0, 2, "put", ("w0-0000", "w0-0001"), error="ConnectionClosedError"),
    ]
    assert m.check({"w0-0000": (0, 2), "w0-0001": (0, 2), "w0-0002": (0, 1)}, "t") == []
    assert m.check({"w0-0000": (0, 1), "w0-0001": (0, 1), "w0-0002": (0, 1)}, "t") == []
    half = m.check({"w0-0000": (0, 2), "w0-0001": (0, 1), "w0-0002": (0, 1)}, "t")
    assert len(half) == 1 and "half visible" in half[0]


def test_a_later_op_may_overwrite_part_of_an_unacknowledged_batch() -> None:
    m = _model()
    m.ops = [
        Op(0, 1, "put", ("w0-0000", "w0-0001"), error="HTTP 500"),
        Op(0, 2, "put", ("w0-0001",), acked=True),
    ]
    assert m.check({"w0-0000": (0, 1), "w0-0001": (0, 2), "w0-0002": None}, "t") == []
    assert m.check({"w0-0000": None, "w0-0001": (0, 2), "w0-0002": None}, "t") == []
    # ...but not hide the acknowledged one behind it.
    assert m.check({"w0-0000": (0, 1), "w0-0001": (0, 1), "w0-0002": None}, "t") != []


def test_in_flight_delete_of_absent_keys_is_no_evidence() -> None:
    m = _model()
    m.state["w0-0000"] = (0, 1)
    m.ops = [Op(0, 2, "delete", ("w0-0000", "w0-0001"), error="ReadTimeoutError")]
    # w0-0001 was absent anyway: only w0-0000 tells whether the delete happened.
    assert m.check({"w0-0000": (0, 1), "w0-0001": None, "w0-0002": None}, "t") == []
    assert m.check({"w0-0000": None, "w0-0001": None, "w0-0002": None}, "t") == []


def test_settled_state_is_what_later_checks_expect() -> None:
    m = _model()
    m.ops = [Op(0, 1, "put", ("w0-0000",), error="ConnectionClosedError")]
    seen = {"w0-0000": None, "w0-0001": None, "w0-0002": None}
    assert m.check(seen, "t") == []
    m.settle(seen)
    # The unacknowledged put was decided "not applied": turning up later is a phantom write.
    assert m.check({"w0-0000": (0, 1), "w0-0001": None, "w0-0002": None}, "t") != []


def test_root_reads_the_log_and_checkpoint_directly(tmp_path: Path) -> None:
    root = Root(str(tmp_path))
    assert root.last_log_seq("b", "i") == -1
    log = tmp_path / "data/b/i/log"
    log.mkdir(parents=True)
    for seq in range(37):
        (log / f"{seq:020d}").write_bytes(b"x")
    assert root.last_log_seq("b", "i") == 36
    assert root.checkpoint_seq("b", "i") == -1
    (tmp_path / "data/b/i/checkpoint").write_text(json.dumps({"seq": 12, "lance_version": 3}))
    assert root.checkpoint_seq("b", "i") == 12


def test_crash_iterations_on_both_backends(tmp_path: Path, moto_endpoint: str) -> None:
    results: dict[str, Stats | BaseException] = {}

    def runner(backend: str, endpoint: str | None) -> Callable[[], None]:
        def go() -> None:
            try:
                results[backend] = crash.run(
                    backend,
                    ITERATIONS,
                    seed=7,
                    workdir=tmp_path / backend,
                    s3_endpoint=endpoint,
                    materializer_kills=MATERIALIZER_KILLS,
                )
            except BaseException as e:  # reported below, in the test's thread
                results[backend] = e

        return go

    started = time.monotonic()
    threads = [
        threading.Thread(target=runner("local", None)),
        threading.Thread(target=runner("s3", moto_endpoint)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for backend, result in results.items():
        if isinstance(result, BaseException):
            raise AssertionError(f"{backend}: the harness broke") from result
    stats = {b: r for b, r in results.items() if isinstance(r, Stats)}
    assert set(stats) == {"local", "s3"}
    report = "\n".join(f"[{b}] {s.summary()}" for b, s in stats.items()) + f"\n{elapsed:.0f}s"
    print(report)
    failures = [f"[{b}] {f}" for b, s in stats.items() for f in s.failures]
    assert not failures, "\n".join(failures) + f"\nlogs under {tmp_path}"
    for s in stats.values():
        assert s.iterations == ITERATIONS
        assert s.server_kills == ITERATIONS - MATERIALIZER_KILLS
        assert s.materializer_kills == MATERIALIZER_KILLS
        assert s.acked_ops > 0 and s.key_checks > 0
        # Each materializer iteration ends with a replay check (the run with one more if needed).
        assert s.replay_checks >= MATERIALIZER_KILLS
    # Kills land mid-call: some outcomes were in doubt and the all-or-nothing check had work.
    assert sum(s.unknown_ops for s in stats.values()) > 0
