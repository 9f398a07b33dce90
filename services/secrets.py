"""The service's signing secret (API tokens, the workspace's session cookie, expert links):
`USINE_SECRET_KEY`, else `<var_dir>/secret_key`, generated on first use (64 random bytes, hex, file
mode 0600, created atomically so that several workers starting together agree on one secret)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

MIN_SECRET_LENGTH = 32


def load_or_create_secret(var_dir: str | Path) -> str:
    path = Path(var_dir) / "secret_key"
    if path.exists():
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(64) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic; fails if another worker created it first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} : permissions {oct(mode)}, 0600 attendu (le secret ne doit être lisible que par le service).")
    value = path.read_text("ascii").strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"{path} : secret trop court ({len(value)} caractères, {MIN_SECRET_LENGTH} au moins).")
    return value


def resolve_secret(explicit: str | None = None) -> str:
    """The signing secret: the argument, else USINE_SECRET_KEY, else the generated file."""
    from services.config import get_settings

    if explicit:
        secret = explicit
    else:
        settings = get_settings()
        secret = settings.secret_key or load_or_create_secret(settings.var_dir)
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"Le secret de signature doit compter au moins {MIN_SECRET_LENGTH} caractères.")
    return secret


__all__ = ["MIN_SECRET_LENGTH", "load_or_create_secret", "resolve_secret"]
