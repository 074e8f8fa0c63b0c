"""User errors share one base class and reach the user as one line; bugs keep their traceback.
(What may import what: tests/test_layers.py.)"""
import pytest


def test_user_errors_share_one_base_and_the_cli_prints_one_line(tmp_path, capsys):
    from neuedit.runtime.bundle import BundleError
    from neuedit.cli.main import main
    from neuedit.data.datasets import DataError
    from neuedit.runtime.engine import EngineError
    from neuedit.errors import NeueditError
    from neuedit.runtime.sketch import SketchError
    from neuedit.runtime.state import StateError
    for cls in (BundleError, DataError, EngineError, SketchError, StateError):
        assert issubclass(cls, NeueditError)
    assert main(["sample", "--bundle", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    from neuedit.cli import main as cli
    import neuedit.cli.sample as sc
    monkeypatch.setattr(sc, "run", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["sample", "--bundle", "x", "--out", "y.png"])
