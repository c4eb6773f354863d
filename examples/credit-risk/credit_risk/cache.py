"""Remember recent answers, keyed on the model artifact's hash and the canonical request.

The model is deterministic, so the same application scored by the same artifact gets the same
answer. The artifact's sha256 is part of every key, so a new model (or a rollback) never gets
an answer the previous one computed, even from a store that outlives the process.
"""

import json
from collections.abc import MutableMapping

from pydantic import BaseModel


class PredictionCache:
    def __init__(self, artifact_sha256: str, store: MutableMapping | None) -> None:
        """`store` bounds size and age (cachetools.TTLCache, say); None turns caching off."""
        self.artifact_sha256 = artifact_sha256
        self.store = store

    def key(self, request: BaseModel) -> tuple[str, str]:
        canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True,
                               separators=(",", ":"))
        return self.artifact_sha256, canonical

    def get(self, request: BaseModel):
        """The remembered answer, or None."""
        return None if self.store is None else self.store.get(self.key(request))

    def put(self, request: BaseModel, answer) -> None:
        if self.store is not None:
            self.store[self.key(request)] = answer
