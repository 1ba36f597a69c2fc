"""CurveZMQ key files: private from their first byte, never overwritten, never among a server's authorized keys.

The finding: secret key files were created world-readable and chmod'ed afterwards, and
the documented layout put each client's secret key inside the server's authorized_keys
directory.
"""

from __future__ import annotations

import os
import stat

import pytest

from labos.cli import main
from labos.core.errors import ConfigurationError
from labos.devices import keys

pytestmark = pytest.mark.unit


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_secret_key_is_created_private_even_under_a_permissive_umask(tmp_path, monkeypatch):
    created: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *args, **kwargs):  # the mode the file is *created* with
        created.append((str(path), mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    old = os.umask(0)
    try:
        public, secret = keys.generate(tmp_path / "lab", "lab", authorize=tmp_path / "authorized")
    finally:
        os.umask(old)
    assert (str(secret), 0o600) in created  # no moment of wider permissions
    assert _mode(secret) == 0o600 and _mode(tmp_path / "lab") == 0o700 and _mode(public) == 0o644
    assert sorted(p.name for p in (tmp_path / "authorized").iterdir()) == ["lab.key"]


def test_keys_are_never_overwritten_and_never_authorized_with_their_secret(tmp_path):
    keys.generate(tmp_path / "lab", "lab")
    before = (tmp_path / "lab" / "lab.key_secret").read_text()
    with pytest.raises(ConfigurationError, match="a key named 'lab' already exists"):
        keys.generate(tmp_path / "lab", "lab")
    assert (tmp_path / "lab" / "lab.key_secret").read_text() == before
    with pytest.raises(ConfigurationError, match="must not be where the secret key goes"):
        keys.generate(tmp_path / "authorized", "x", authorize=tmp_path / "authorized")
    (tmp_path / "authorized").mkdir()
    (tmp_path / "authorized" / "lab.key_secret").write_text(before)  # the old documented layout
    with pytest.raises(ConfigurationError, match=r"holds secret keys \(lab.key_secret\): move them out"):
        keys.authorized_keys(tmp_path / "authorized")


def test_labos_keys_authorize(tmp_path, capsys):
    assert main(["keys", str(tmp_path / "pc"), "pc", "--authorize", str(tmp_path / "auth")]) == 0
    out = capsys.readouterr().out
    assert "mode 0600" in out and "authorized:" in out
    assert keys.authorized_keys(tmp_path / "auth") == {keys.load_public(tmp_path / "pc" / "pc.key")}
    assert main(["keys", str(tmp_path / "pc"), "pc"]) == 2  # exists: a clear refusal
    assert "already exists" in capsys.readouterr().err
