"""gan.io.fileio: durable writes leave either the old file or the complete new one, never a part."""
import json
import os
import stat

import pytest

from gan.io.fileio import append_line, atomic_write, atomic_write_bytes, atomic_write_json


@pytest.mark.parametrize("durable", [True, False])
def test_failed_write_keeps_the_previous_file_and_leaves_no_temp_files(tmp_path, durable):
    target = tmp_path / "G.safetensors"
    target.write_bytes(b"previous")

    def crash(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        atomic_write(target, crash, durable=durable)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G.safetensors"]


def test_a_write_that_need_not_be_durable_is_whole_and_runs_no_fsync(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    atomic_write_bytes(tmp_path / "image.png", b"png bytes", durable=False)
    assert (tmp_path / "image.png").read_bytes() == b"png bytes" and synced == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.png"]
    atomic_write_bytes(tmp_path / "G.safetensors", b"weights")   # the default still syncs file and folder
    assert len(synced) >= 1


def test_written_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}


def test_temporary_file_keeps_the_suffix_a_format_sniffing_writer_needs(tmp_path):
    seen = []
    atomic_write(tmp_path / "walk.mp4", lambda tmp: (seen.append(tmp), open(tmp, "wb").close()), suffix=".mp4")
    assert seen[0].endswith(".mp4") and os.path.dirname(seen[0]) == str(tmp_path)
    assert (tmp_path / "walk.mp4").is_file() and not os.path.exists(seen[0])


def test_append_line_adds_whole_lines_and_creates_the_folder(tmp_path):
    path = tmp_path / "sub" / "log.jsonl"
    append_line(path, "one")
    append_line(path, "two\n")
    assert path.read_text() == "one\ntwo\n"
