"""Document storage: content-addressed by SHA-256, so writing before the transaction commits is
idempotent and a new version never overwrites an old one."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

MIB = 1024 * 1024
# The largest piece accepted, whichever shell receives it (the API and the web workspace): the one
# place the limit is defined; `services.body_limit` derives the request limits from it.
MAX_UPLOAD_BYTES = 20 * MIB
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // MIB  # « 20 Mo » in the messages


class Storage(Protocol):
    def put(self, content: bytes) -> tuple[str, str]: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> bool: ...


class FileStorage:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def put(self, content: bytes) -> tuple[str, str]:
        digest = hashlib.sha256(content).hexdigest()
        key = f"{digest[:2]}/{digest}"
        path = self.root / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        return key, digest

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def delete(self, key: str) -> bool:
        """Remove a file (RGPD retention); False when it was already gone (idempotent)."""
        try:
            (self.root / key).unlink()
            return True
        except FileNotFoundError:
            return False

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()


class InMemoryStorage:
    def __init__(self):
        self.blobs: dict[str, bytes] = {}

    def put(self, content: bytes) -> tuple[str, str]:
        digest = hashlib.sha256(content).hexdigest()
        key = f"{digest[:2]}/{digest}"
        self.blobs[key] = content
        return key, digest

    def get(self, key: str) -> bytes:
        return self.blobs[key]

    def delete(self, key: str) -> bool:
        return self.blobs.pop(key, None) is not None

    def exists(self, key: str) -> bool:
        return key in self.blobs
