"""The mcmt command line: help for every subcommand, one-line errors, exit codes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import COMMANDS, build_parser, main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_subcommand_help_documents_common_options(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out
    assert "--set" in out
    assert "--verbose" in out


def test_every_option_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"mcmt {name} {action.option_strings[0]} has no help text"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_missing_video_is_one_line_error(tmp_path):
    res = run_cli("run", "--videos", "missing.mp4", cwd=tmp_path)
    assert res.returncode != 0
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert "missing.mp4" in lines[0]
    assert "Traceback" not in res.stderr


def test_unknown_override_key_is_named(tmp_path):
    video = tmp_path / "cam.mp4"
    video.write_bytes(b"x")
    res = run_cli("run", "--videos", str(video), "--set", "tracker.nonexistent=1", cwd=tmp_path)
    assert res.returncode != 0
    assert "tracker.nonexistent" in res.stderr
    assert "Traceback" not in res.stderr


def test_config_file_errors_name_the_file(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("detector:\n  modle: x.pt\n")
    assert main(["run", "--videos", str(cfg), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "detector.modle" in err
    assert str(cfg) in err


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run"])  # --videos is required
    assert exc.value.code == 2
    assert "--videos" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_verbose_shows_traceback_for_user_errors(tmp_path):
    res = run_cli("-v", "run", "--videos", "missing.mp4", cwd=tmp_path)
    res2 = run_cli("run", "-v", "--videos", "missing.mp4", cwd=tmp_path)
    for r in (res, res2):  # -v before or after the command
        assert r.returncode == 2
        assert "Traceback" in r.stderr
        assert "missing.mp4" in r.stderr
