"""Importing nmap XML into the store: all of a good file, none of a refused one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.errors import ImportRefused
from scanner.importer import (
    available_memory,
    import_bytes,
    memory_needed,
    read_capped,
    targets_from_args,
)
from store.sqlite import SQLiteStore
from tests.test_reports_cli import run as run_cli

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "s3cr3t-marker-do-not-echo"

HOSTILE = {
    "xxe": (
        '<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        f"<nmaprun><!-- {SECRET} --><host>&x;</host></nmaprun>"
    ).encode(),
    "billion-laughs": (
        '<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY a "' + SECRET + '">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        "<nmaprun>&c;</nmaprun>"
    ).encode(),
    "not-nmap": f'<?xml version="1.0"?><svg><text>{SECRET}</text></svg>'.encode(),
    "garbage": SECRET.encode() * 3,
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_file_is_refused_and_nothing_is_stored(
    kind: str, sqlite_store: SQLiteStore
) -> None:
    with pytest.raises(ImportRefused) as info:
        import_bytes(sqlite_store, HOSTILE[kind], filename=f"{kind}.xml")
    assert SECRET not in str(info.value)
    assert sqlite_store.list_reports() == []


def test_oversize_file_is_refused_before_parsing(tmp_path: Path, sqlite_store: SQLiteStore) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"<nmaprun>" + b" " * 2048 + b"</nmaprun>")
    with pytest.raises(ImportRefused, match="limit"):
        read_capped(big, max_bytes=1024)
    with pytest.raises(ImportRefused, match="limit"):
        import_bytes(sqlite_store, big.read_bytes(), filename="big.xml", max_bytes=1024)
    assert sqlite_store.list_reports() == []


def test_missing_file_is_a_refusal(tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="Cannot read"):
        read_capped(tmp_path / "nope.xml")


def test_good_file_is_stored_whole(sqlite_store: SQLiteStore) -> None:
    data = (FIXTURES / "netns_after.xml").read_bytes()
    report = import_bytes(sqlite_store, data, filename="netns_after.xml", owner="ana")
    stored = sqlite_store.get_report(report.id)
    assert stored.hosts == report.hosts
    assert stored.source == "import: netns_after.xml"
    assert stored.targets == ("10.231.7.2-4",)  # read back from nmap's command line
    [row] = sqlite_store.list_reports()
    assert (row.hosts_total, row.hosts_up, row.open_ports) == (3, 2, 6)


def test_control_characters_in_a_file_name_are_stored_visible(sqlite_store: SQLiteStore) -> None:
    """The name an uploader gives is shown in lists and printed by the command line: its escape
    sequences become symbols, never terminal commands."""
    data = (FIXTURES / "netns_after.xml").read_bytes()
    report = import_bytes(sqlite_store, data, filename="scan\x1b[2J\x1b]8;;http://x/\x07.xml")
    stored = sqlite_store.get_report(report.id)
    assert stored.source == "import: scan␛[2J␛]8;;http://x/␇.xml"


def test_truncated_file_imports_the_complete_hosts_and_says_so(sqlite_store: SQLiteStore) -> None:
    data = (FIXTURES / "netns_truncated.xml").read_bytes()
    report = import_bytes(sqlite_store, data, filename="netns_truncated.xml")
    stored = sqlite_store.get_report(report.id)
    assert [h.address for h in stored.hosts] == ["10.231.7.4", "10.231.7.2"]
    assert not stored.complete
    assert stored.note == "the file stops after host 2; it was incomplete"
    assert not sqlite_store.list_reports()[0].complete


@pytest.mark.parametrize(
    ("args", "targets"),
    [
        ("nmap -n -sT -p 1,18021 -oX st.xml 127.0.0.1", ("127.0.0.1",)),
        ("nmap -6 -A -oX scan6.xml 2001:db8::10 2001:db8::11", ("2001:db8::10", "2001:db8::11")),
        (
            "nmap -sS --top-ports 100 -T4 10.0.0.0/24 192.0.2.1-9 -- 198.51.100.7",
            ("10.0.0.0/24", "192.0.2.1-9", "198.51.100.7"),
        ),
        ("nmap -p 1-1000 --host-timeout 30s scanme.example.test", ()),
        ("nmap 'unbalanced", ()),
    ],
)
def test_targets_are_read_from_the_nmap_command_line(args: str, targets: tuple[str, ...]) -> None:
    assert targets_from_args(args) == targets


# -- declared encodings --------------------------------------------------------------------------
def _declaring(encoding: str, codec: str = "utf-8") -> bytes:
    data = (FIXTURES / "loopback_sT.xml").read_text()
    return data.replace('encoding="UTF-8"', f'encoding="{encoding}"').encode(codec)


@pytest.mark.parametrize(
    ("encoding", "codec", "named"),
    [("UTF-7", "utf-7", '"UTF-7"'), ("x-klingon-9", "utf-8", '"x-klingon-9"')],
)
def test_an_unusable_encoding_is_refused_and_nothing_is_stored(
    encoding: str, codec: str, named: str, sqlite_store: SQLiteStore
) -> None:
    with pytest.raises(ImportRefused, match="convert it to UTF-8") as info:
        import_bytes(sqlite_store, _declaring(encoding, codec), filename="odd.xml")
    assert named in str(info.value)
    assert sqlite_store.list_reports() == []


def test_a_utf32_file_is_imported_as_its_utf8_twin(sqlite_store: SQLiteStore) -> None:
    twin = import_bytes(sqlite_store, _declaring("UTF-8"), filename="a.xml")
    wide = import_bytes(sqlite_store, _declaring("UTF-32", "utf-32"), filename="b.xml")
    assert sqlite_store.get_report(wide.id).hosts == twin.hosts


def test_cli_refuses_an_unusable_encoding_with_exit_2(db_path: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd.xml"
    odd.write_bytes(_declaring("UTF-7", "utf-7"))
    out = run_cli(db_path, "import", str(odd))
    assert out.returncode == 2
    assert 'declares the encoding "UTF-7"' in out.stderr and "Traceback" not in out.stderr
    listed = run_cli(db_path, "list", "--format", "json")
    assert json.loads(listed.stdout) == []


# -- memory ----------------------------------------------------------------------------------------
def test_a_file_too_big_for_free_memory_is_refused_before_it_is_read(
    tmp_path: Path, sqlite_store: SQLiteStore
) -> None:
    data = (FIXTURES / "netns_after.xml").read_bytes()
    path = tmp_path / "scan.xml"
    path.write_bytes(data)
    tight = memory_needed(len(data)) - 1
    with pytest.raises(
        ImportRefused, match=r"needs up to 101 MiB of memory and only 100 MiB is free"
    ):
        read_capped(path, available=lambda: tight)
    # Bytes already read need no more room for themselves.
    with pytest.raises(
        ImportRefused, match=r"needs up to 101 MiB of memory and only 100 MiB is free"
    ):
        import_bytes(sqlite_store, data, filename="scan.xml", available=lambda: tight - len(data))
    assert sqlite_store.list_reports() == []
    assert read_capped(path, available=lambda: tight + 1) == data
    import_bytes(sqlite_store, data, filename="scan.xml", available=lambda: tight + 1 - len(data))
    assert len(sqlite_store.list_reports()) == 1


def test_free_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  2048 kB\nMemFree:  1024 kB\nMemAvailable:  1536 kB\n")
    assert available_memory(meminfo) == 1536 * 1024
    assert available_memory(tmp_path / "missing") is None
