"""One API call in flight: who is asking, through which dialect, and whether they may.

The bucket owner's account may do everything. Any other principal needs an Allow in the bucket
policy for every action the call implies (QueryVectors with a filter or metadata also implies
GetVectors, as in AWS), and an explicit Deny refuses even the owner's users and root, except that
the owner's *root* may always run the policy operations themselves, so that a policy that locks
everyone out can be repaired (S3's rule); a user of the owning account cannot delete the policy
that denies it. Refusals are audited.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from api.auth import policy
from api.auth.conditions import RequestFacts
from api.bodies import parse_body
from api.config import Credential, ServerConfig
from api.dialects import ALL_DIALECTS, Dialect
from api.errors import ApiError, Kind
from engine import BucketRef, Engine, IndexRef
from engine.context import RequestContext
from engine.errors import BucketNotFound

POLICY_OPERATIONS = {"PutVectorBucketPolicy", "GetVectorBucketPolicy", "DeleteVectorBucketPolicy"}
DATA_READS = frozenset({"GetVectors", "ListVectors", "QueryVectors"})


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> policy.Policy | None:
    try:
        return policy.parse(text)
    except ApiError:
        return None  # stored before a stricter parser: it grants nothing


_ACTION_PREFIX = {"s3": "s3vectors", "tos": "tosvectors", "oss": "oss"}  # in denial messages


@dataclass
class Call:
    engine: Engine
    config: ServerConfig
    dialect: Dialect
    credential: Credential
    host: tuple[str, str] | None  # (bucket, account) from a bucket Host name
    ctx: RequestContext
    operation: str
    secure: bool = False  # arrived over TLS (aws:SecureTransport)

    @property
    def account(self) -> str:
        return self.credential.account

    def bucket_id(self, ref: BucketRef) -> str:
        return self.dialect.bucket_id(self.config.region, ref.account, ref.name)

    def index_id(self, ref: IndexRef) -> str:
        return self.dialect.index_id(self.config.region, ref.account, ref.bucket, ref.name)

    def _resource_names(self, bucket: BucketRef, index: str | None) -> tuple[str, ...]:
        """The resource in every dialect's spelling, this call's own dialect first."""
        region = self.config.region
        dialects = (self.dialect, *(d for d in ALL_DIALECTS if d is not self.dialect))
        if index is None:
            return tuple(d.bucket_id(region, bucket.account, bucket.name) for d in dialects)
        return tuple(d.index_id(region, bucket.account, bucket.name, index) for d in dialects)

    def facts(self) -> RequestFacts:
        return RequestFacts(
            source_ip=self.ctx.source,
            secure=self.secure,
            principal_arn=self.credential.principal,
            account=self.account,
            user=self.credential.user,
            now=self.engine.clock.now(),
            region=self.config.region,
        )

    async def authorize(self, bucket: BucketRef, index: str | None = None, also: tuple[str, ...] = ()) -> None:
        if self.operation in DATA_READS:
            # Their index's log, which they probe anyway, tells them of its own changes: the
            # catalog probe may be skipped, and the policy be a second old (engine/catalog).
            self.engine.catalog.tolerate(self.engine.settings.catalog_staleness)
        owner = bucket.account == self.account
        root = owner and self.credential.user is None
        try:
            text = (await self.engine.get_bucket(bucket)).policy
        except BucketNotFound:
            if owner:
                raise
            await self.deny(bucket, index, "no such bucket visible to this principal", exists=False)
            return
        parsed = _parsed(text) if text else None
        names = self._resource_names(bucket, index)
        facts = self.facts()
        for action in (self.operation, *also):
            verdict = policy.decide(parsed, self.account, self.credential.user, action, names, facts)
            if verdict == "deny" and not (root and self.operation in POLICY_OPERATIONS):
                await self.deny(bucket, index, f"explicit deny of {action} in the bucket policy")
            if not owner and verdict != "allow":
                await self.deny(bucket, index, f"no policy statement allows {action}")

    async def deny(self, bucket: BucketRef, index: str | None, reason: str, exists: bool = True) -> None:
        """Refuse and audit: in the caller's audit and, when the bucket exists, in its owner's."""
        resource = self._resource_names(bucket, index)[0]
        owner = {"owner": bucket.account} if exists and bucket.account != self.account else {}
        await self.engine.audit.denied(self.ctx, self.operation, resource, reason, **owner)
        # AWS's wording ("User: <arn> is not authorized to perform: s3vectors:DeleteVectors on
        # resource: <arn> because ..."); why, in vecledger's words, is in the audit record.
        action = f"{_ACTION_PREFIX.get(self.dialect.name, 's3vectors')}:{self.operation}"
        why = (
            "with an explicit deny in a resource-based policy"
            if reason.startswith("explicit deny")
            else f"because no resource-based policy allows the {action} action"
        )
        principal = self.credential.principal
        message = f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"
        raise ApiError(Kind.ACCESS_DENIED, message)


Handler = Callable[[Call, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    model: type[BaseModel]
    handler: Handler
    parser: Callable[[bytes], Any] | None = None

    def parse(self, body: bytes) -> Any:
        return self.parser(body) if self.parser is not None else parse_body(self.model, body)


OPERATIONS: dict[str, Operation] = {}


def operation(
    name: str, model: type[BaseModel], parser: Callable[[bytes], Any] | None = None
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the implementation of ``POST /<name>`` (every dialect). ``model``
    describes the body; ``parser``, if given, reads it faster into what the handler takes."""

    def register(fn: Handler) -> Handler:
        OPERATIONS[name] = Operation(model, fn, parser)
        return fn

    return register
