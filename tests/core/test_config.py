import pytest

from xrefine.config import Option, build_config
from xrefine.errors import InputError


def test_defaults_file_and_arguments_layer(tmp_path):
    toml = tmp_path / "job.toml"
    toml.write_text('engine = "gn"\n[detector]\nhierarchy_level = 1\n[outlier]\nalgorithm = "tukey"\n')
    cfg = build_config(str(toml), ["engine=lm", "max_iterations=7"])
    assert cfg["engine"] == "lm"  # argument beats file
    assert cfg["detector.hierarchy_level"] == 1  # file beats default
    assert cfg["outlier.algorithm"] == "tukey"
    assert cfg["max_iterations"] == 7
    assert cfg["close_to_spindle_cutoff"] == 0.02  # default


def test_unknown_key_suggests_the_closest():
    with pytest.raises(InputError, match="did you mean detector.hierarchy_level"):
        build_config(None, ["detector.hierachy_level=1"])


def test_unknown_key_in_file_names_the_file(tmp_path):
    toml = tmp_path / "job.toml"
    toml.write_text("[beam]\nfixx = ['all']\n")
    with pytest.raises(InputError, match="job.toml.*beam.fixx"):
        build_config(str(toml))


def test_bad_values_are_errors():
    with pytest.raises(InputError, match="max_iterations"):
        build_config(None, ["max_iterations=many"])
    with pytest.raises(InputError, match="not of the form key=value"):
        build_config(None, ["engine"])
    with pytest.raises(InputError, match="auto_reduction.action"):
        build_config(None, ["auto_reduction.action=explode"])


def test_python_keyword_overrides():
    cfg = build_config(overrides={"detector__fix": ["distance"], "max_iterations": "auto"})
    assert cfg["detector.fix"] == ["distance"]
    assert cfg["max_iterations"] is None


def test_option_parsing():
    assert Option("a", [], "list", "").parse("Mu1, Mu2 Nu", "x") == ["Mu1", "Mu2", "Nu"]
    assert Option("a", False, "bool", "").parse("yes", "x") is True
    with pytest.raises(InputError):
        Option("a", False, "bool", "").parse("perhaps", "x")


def test_malformed_toml(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text("engine = \n")
    with pytest.raises(InputError, match="bad.toml: not valid TOML"):
        build_config(str(toml))
