"""The API's operations, each written once for every dialect against ``api/dialects``.

``buckets``, ``indexes`` and ``vectors`` register themselves in
``OPERATIONS`` by name as they are imported, here; ``oss`` maps OSS's REST paths onto them, and
``tags`` serves S3's ``/tags/<arn>``, and ``admin`` the owner-only ``/_vecledger/*`` actions.
"""

from api.call import OPERATIONS
from api.operations import buckets, indexes, vectors

__all__ = ["OPERATIONS", "buckets", "indexes", "vectors"]
