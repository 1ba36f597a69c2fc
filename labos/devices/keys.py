"""CurveZMQ key pairs for instrument servers and their clients.

A key pair lives in a directory of its own (mode 0700), its secret file created with
mode 0600; a server's ``authorized_keys`` directory holds only its clients' public keys.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import zmq
import zmq.auth

from labos.core.errors import ConfigurationError


def generate(directory: str | Path, name: str, authorize: str | Path | None = None) -> tuple[Path, Path]:
    """Create ``NAME.key`` (public, to share) and ``NAME.key_secret`` (private) in ``directory``.

    The secret file is created with mode 0600 in one step (never readable by others,
    not even for a moment) and a directory this creates gets mode 0700. With
    ``authorize``, the public key is also copied into that directory (a server's
    ``authorized_keys``), which must be another directory: a secret key never lies
    among the keys a server authorises.

    Raises
    ------
    ConfigurationError
        If a key of that name exists already (keys are never overwritten), or
        ``authorize`` is ``directory``.
    """
    d = Path(directory)
    if authorize is not None and Path(authorize).resolve() == d.resolve():
        raise ConfigurationError(
            f"the authorized-keys directory {authorize} must not be where the secret key goes; "
            "give the key pair a directory of its own"
        )
    _mkdir_private(d)
    public, secret = d / f"{name}.key", d / f"{name}.key_secret"
    if public.exists() or secret.exists():
        raise ConfigurationError(f"a key named {name!r} already exists in {d}; keys are never overwritten")
    pub, sec = zmq.curve_keypair()
    _write(secret, _certificate(pub, sec), 0o600)
    _write(public, _certificate(pub, None), 0o644)
    if authorize is not None:
        a = Path(authorize)
        a.mkdir(parents=True, exist_ok=True)
        if (a / public.name).exists():
            raise ConfigurationError(f"{a / public.name} exists already; keys are never overwritten")
        _write(a / public.name, _certificate(pub, None), 0o644)
    return public, secret


def _mkdir_private(d: Path) -> None:
    """Create ``d`` (and its parents) with mode 0700; an existing directory is left as it is."""
    if d.is_dir():
        return
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    d.chmod(0o700)  # mkdir's mode is filtered by the umask


def _certificate(public: bytes, secret: bytes | None) -> str:
    """A ZeroMQ certificate file's text (the format ``zmq.auth.load_certificate`` reads)."""
    kind = "Secret" if secret is not None else "Public"
    text = (
        f"#   ****  Generated on {datetime.datetime.now():%Y-%m-%d %H:%M:%S} by labos  ****\n"
        f"#   ZeroMQ CURVE **{kind}** Certificate\n"
        + ("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n" if secret else "")
        + "\nmetadata\ncurve\n"
        + f'    public-key = "{public.decode()}"\n'
    )
    if secret is not None:
        text += f'    secret-key = "{secret.decode()}"\n'
    return text


def _write(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (``O_EXCL``: never over an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)  # os.open's mode is filtered by the umask; never looser than asked


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
    """Public keys (z85) of every ``*.key`` file in ``directory``.

    Raises
    ------
    ConfigurationError
        If the directory is missing, or holds a secret key (``*.key_secret``): secret
        keys never belong among the keys a server authorises.
    """
    d = Path(directory)
    if not d.is_dir():
        raise ConfigurationError(f"authorized-keys directory not found: {d}")
    secrets = sorted(p.name for p in d.glob("*.key_secret"))
    if secrets:
        raise ConfigurationError(
            f"the authorized-keys directory {d} holds secret keys ({', '.join(secrets)}): move them out; "
            "it should hold only the clients' public *.key files"
        )
    return {load_public(p) for p in sorted(d.glob("*.key"))}
