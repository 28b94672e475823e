"""Settings: defaults, accepted values, and a clear refusal naming the variable."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import config


def test_defaults_bind_loopback_scope_and_local_ollama() -> None:
    cfg = config.load({})
    assert cfg.ollama_host == "http://127.0.0.1:11434"
    assert cfg.store == "sqlite"
    assert cfg.db_path == config.DEFAULT_DB
    assert ipaddress.ip_address("127.0.0.1") in cfg.scope[0]
    assert ipaddress.ip_address("::1") in cfg.scope[1]
    assert cfg.max_targets == 4096
    assert cfg.max_jobs == 2


def test_values_are_read_from_the_environment(tmp_path: Path) -> None:
    cfg = config.load(
        {
            "OLLAMA_HOST": "gpu-box:11434",
            "SCANSCRIBE_DB": str(tmp_path / "x.db"),
            "SCANSCRIBE_SCOPE": "10.0.0.0/24, 192.168.1.7",
            "SCANSCRIBE_MAX_TARGETS": "10",
        }
    )
    assert cfg.ollama_host == "http://gpu-box:11434"
    assert cfg.db_path == tmp_path / "x.db"
    assert [str(n) for n in cfg.scope] == ["10.0.0.0/24", "192.168.1.7/32"]
    assert cfg.max_targets == 10


@pytest.mark.parametrize(
    ("env", "named", "accepts"),
    [
        ({"SCANSCRIBE_STORE": "postgres"}, "SCANSCRIBE_STORE", "'sqlite'"),
        ({"SCANSCRIBE_SCOPE": "10.0.0.0/33"}, "SCANSCRIBE_SCOPE", "CIDRs"),
        ({"SCANSCRIBE_SCOPE": "everything"}, "SCANSCRIBE_SCOPE", "CIDRs"),
        ({"SCANSCRIBE_SCOPE": " , "}, "SCANSCRIBE_SCOPE", "CIDRs"),
        ({"OLLAMA_HOST": "ftp://x"}, "OLLAMA_HOST", "URL"),
        ({"OLLAMA_HOST": "http://host:99999"}, "OLLAMA_HOST", "URL"),
        ({"SCANSCRIBE_MAX_TARGETS": "lots"}, "SCANSCRIBE_MAX_TARGETS", "whole number"),
        ({"SCANSCRIBE_MAX_TARGETS": "0"}, "SCANSCRIBE_MAX_TARGETS", "whole number"),
        ({"SCANSCRIBE_STORE": "firestore"}, "GOOGLE_APPLICATION_CREDENTIALS", "emulator"),
        (
            {"SCANSCRIBE_STORE": "firestore", "GOOGLE_APPLICATION_CREDENTIALS": "/nope.json"},
            "GOOGLE_APPLICATION_CREDENTIALS",
            "service-account",
        ),
    ],
)
def test_bad_values_name_the_variable_and_what_it_accepts(
    env: dict[str, str], named: str, accepts: str
) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(env)
    assert named in str(err.value)
    assert accepts in str(err.value)


def test_db_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="SCANSCRIBE_DB"):
        config.load({"SCANSCRIBE_DB": str(tmp_path)})


def test_bad_setting_stops_the_command_line_with_its_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import services; services.build()"],
        env={"SCANSCRIBE_SCOPE": "not-a-net", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=config.PROJECT_ROOT,
        check=False,
    )
    assert proc.returncode != 0
    assert "SCANSCRIBE_SCOPE" in proc.stderr
