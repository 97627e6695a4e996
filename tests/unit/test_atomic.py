"""Atomic writes leave the old file whole when writing fails."""

from pathlib import Path

import pytest

from model.atomic import atomic_path, write_json_atomically


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def write_then_fail() -> None:
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_then_fail()
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_json_is_written_with_stable_formatting(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "out.json"
    write_json_atomically(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
