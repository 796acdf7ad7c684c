"""Make moto's conditional PUT atomic (test-only).

moto checks If-None-Match / If-Match and then writes, with no lock in between (its FAQ: "Is Moto
concurrency safe? No"); under a short GIL switch interval 1-6% of races had several winners
(measured). AWS S3 and MinIO are atomic, so tests that assert "exactly one writer wins" serialise
moto's key operations with this shim. It patches a private method: re-check it when moto is
upgraded.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3.responses import S3Response

_LOCK = threading.RLock()
_original = S3Response._key_response


def _locked_key_response(self: Any, *args: Any, **kwargs: Any) -> Any:
    with _LOCK:
        return _original(self, *args, **kwargs)


S3Response._key_response = _locked_key_response
