"""The one definition of the distances the API reports, used for the tail and for Lance's hits.

Lance ranks candidates (squared L2 or ``1 - cos`` in float32); the reported distance is recomputed
here in float64 from the stored float32 vectors, so a row gets the same distance to the last bit
whether it is answered from the tail or from the dataset, before or after a fold or a restore.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def distances(vectors: npt.NDArray[np.float32], query: npt.NDArray[np.float32], metric: str) -> npt.NDArray[np.float64]:
    """Euclidean distance (not squared) or cosine distance ``1 - cos`` of each row to ``query``."""
    v = vectors.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(v, axis=1)
        norms = np.where(norms == 0, 1.0, norms)
        qn = float(np.linalg.norm(q)) or 1.0
        return np.asarray(1.0 - (v @ q) / (norms * qn), dtype=np.float64)
    diff = v - q
    return np.asarray(np.sqrt(np.einsum("ij,ij->i", diff, diff)), dtype=np.float64)
