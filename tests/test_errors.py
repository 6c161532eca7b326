"""The error contract (README): bad input exits 2 with a message, no traceback, nothing overwritten."""

from lmpshear.rundir import RunDir

from conftest import cli


def test_prepare_never_overwrites_a_run_a_spec_or_a_users_files(tmp_path):
    run = tmp_path / "run"
    cli("prepare", "ka3d-tiny", "-o", run, check=True)
    first = (run / "config.toml").read_text()
    proc = cli("prepare", "softdisk2d-tiny", "-o", run)
    assert proc.returncode == 2 and "already holds a prepared run" in proc.stderr and "--force" in proc.stderr
    assert (run / "config.toml").read_text() == first
    # --force replaces the spec of a run that has not started
    cli("prepare", "softdisk2d-tiny", "-o", run, "--force", check=True)
    assert RunDir(run).spec().system.dimension == 2
    # ... but never while a run holds the directory (a run equilibrating has no data yet), even with --force
    with RunDir(run).lock():
        proc = cli("prepare", "ka3d-tiny", "-o", run, "--force")
    assert proc.returncode == 2 and "is being run now" in proc.stderr and "Traceback" not in proc.stderr
    assert RunDir(run).spec().system.dimension == 2
    # a directory with a user's own files
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ((), ("--force",)):
        proc = cli("prepare", "ka3d-tiny", "-o", mine, *extra)
        assert proc.returncode == 2 and "not empty (notes.txt)" in proc.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # an empty -o is not the current directory
    proc = cli("prepare", "ka3d-tiny", "-o", "", cwd=tmp_path)
    assert proc.returncode == 2 and "-o/--out is empty" in proc.stderr
    assert not (tmp_path / "config.toml").exists()
