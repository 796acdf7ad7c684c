"""What the crash harness expects: writers' ops, the values they leave, and the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

DIM = 8
BUCKET = "crash"
MAIN_INDEX = "main"
BUILD_THRESHOLD = 300  # rows before an IVF index build: low, so a build happens at harness sizes
LEASE_SECONDS = 2.0  # a SIGKILLed materializer's lease expires this soon
MAX_GET = 100

# A key's value: (writer, op number) of the put that wrote it, or None when it is absent.
Value = tuple[int, int] | None


def vector_for(writer: int, op: int, key_no: int) -> list[float]:
    """The vector a put writes: it encodes (writer, op, key) exactly in float32, so a row whose
    vector and metadata come from different writes is caught."""
    return [float(writer + 1), float(op), float(key_no), 1.0, 0.5, float(op % 7), float(key_no % 5), 0.25]


def key_name(writer: int, key_no: int) -> str:
    return f"w{writer}-{key_no:04d}"


def key_no_of(key: str) -> int:
    return int(key.rsplit("-", 1)[1])


@dataclass
class Op:
    """One PutVectors or DeleteVectors call and what the client learnt of its outcome."""

    writer: int
    number: int
    kind: str  # "put" or "delete"
    keys: tuple[str, ...]
    acked: bool = False  # HTTP 200 received
    error: str | None = None  # why the outcome is unknown (None when acked)

    @property
    def value(self) -> Value:
        return (self.writer, self.number) if self.kind == "put" else None


class Model:
    """What one index must hold: the settled state of every key after the last check, plus the ops
    issued since, acknowledged or not. Keys are disjoint per writer and each writer is sequential,
    so per-key order is the order of the ops in ``ops``."""

    def __init__(self, keys: list[str]) -> None:
        self.state: dict[str, Value] = dict.fromkeys(keys)
        self.ops: list[Op] = []

    @property
    def keys(self) -> list[str]:
        return sorted(self.state)

    def allowed(self) -> tuple[dict[str, list[Value]], dict[str, Op]]:
        """Per key, the values a correct store may show: the last acknowledged one (first in the
        list), then those of unacknowledged ops issued after it; and the last op on each key."""
        allowed: dict[str, list[Value]] = {k: [v] for k, v in self.state.items()}
        last: dict[str, Op] = {}
        for op in self.ops:
            for k in op.keys:
                last[k] = op
                if op.acked:
                    allowed[k] = [op.value]
                else:
                    allowed[k].append(op.value)
        return allowed, last

    def check(self, observed: dict[str, Value], where: str) -> list[str]:
        allowed, last = self.allowed()
        failures = []
        for k in self.keys:
            if observed[k] not in allowed[k]:
                failures.append(
                    f"{where}: key {k} shows {observed[k]}; acknowledged {allowed[k][0]}, "
                    f"in flight {allowed[k][1:]} (a lost or phantom write)"
                )
        for op in self.ops:
            if op.acked:
                continue
            # Keys this op wrote last: there it decides the value. A key is evidence only if the op's
            # value cannot also come from an earlier op (a delete of a key that was already absent).
            shown, hidden = [], []
            for k in (k for k in op.keys if last[k] is op):
                earlier = allowed[k][:-1]
                if observed[k] == op.value and op.value not in earlier:
                    shown.append(k)
                elif observed[k] != op.value:
                    hidden.append(k)
            if shown and hidden:
                failures.append(
                    f"{where}: {op.kind} op {op.writer}/{op.number} (in flight: {op.error}) is half visible: "
                    f"applied to {shown}, not to {hidden}"
                )
        return failures

    def settle(self, observed: dict[str, Value]) -> None:
        """Adopt what the store shows (checked already): unacknowledged ops are decided now."""
        self.state = {k: observed[k] for k in self.state}
        self.ops = []


@dataclass
class Stats:
    iterations: int = 0
    server_kills: int = 0
    materializer_kills: int = 0
    acked_ops: int = 0  # acknowledged calls whose effect was checked
    unknown_ops: int = 0  # calls in flight at a kill (or failed): outcome decided by the check
    key_checks: int = 0  # (key, read) pairs compared with the model
    replay_checks: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return self.server_kills + self.materializer_kills

    def summary(self) -> str:
        return (
            f"iterations: {self.iterations}\n"
            f"kills: {self.kills} ({self.server_kills} servers, {self.materializer_kills} materializers)\n"
            f"acknowledged writes checked: {self.acked_ops} calls ({self.key_checks} key reads compared; "
            f"{self.unknown_ops} calls in flight at a kill, settled by the check)\n"
            f"replay checks: {self.replay_checks}\n"
            f"failures found: {len(self.failures)}"
        )
