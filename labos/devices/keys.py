"""CurveZMQ key pairs for instrument servers and their clients."""

from __future__ import annotations

from pathlib import Path

import zmq.auth

from labos.core.errors import ConfigurationError


def generate(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Create ``NAME.key`` (public, to share) and ``NAME.key_secret`` (private) in ``directory``.

    Raises
    ------
    ConfigurationError
        If a key of that name exists already (keys are never overwritten).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = d / f"{name}.key", d / f"{name}.key_secret"
    if public.exists() or secret.exists():
        raise ConfigurationError(f"a key named {name!r} already exists in {d}; keys are never overwritten")
    pub, sec = zmq.auth.create_certificates(str(d), name)
    Path(sec).chmod(0o600)
    return Path(pub), Path(sec)


def load_public(path: str | Path) -> bytes:
    """The public key stored in ``path`` (a ``.key`` or ``.key_secret`` file)."""
    pub, _ = _load(path)
    return pub


def load_pair(path: str | Path) -> tuple[bytes, bytes]:
    """The ``(public, secret)`` pair stored in a ``.key_secret`` file."""
    pub, sec = _load(path)
    if sec is None:
        raise ConfigurationError(f"{path} holds no secret key (use the .key_secret file)")
    return pub, sec


def _load(path: str | Path) -> tuple[bytes, bytes | None]:
    p = Path(path)
    if not p.is_file():
        raise ConfigurationError(f"key file not found: {p}")
    try:
        pub, sec = zmq.auth.load_certificate(str(p))
    except (ValueError, OSError) as exc:
        raise ConfigurationError(f"{p} is not a CurveZMQ key file: {exc}") from None
    if pub is None:
        raise ConfigurationError(f"{p} holds no public key")
    return pub, sec


def authorized_keys(directory: str | Path) -> set[bytes]:
    """Public keys (z85) of every ``*.key`` file in ``directory``."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigurationError(f"authorized-keys directory not found: {d}")
    return {load_public(p) for p in sorted(d.glob("*.key"))}
