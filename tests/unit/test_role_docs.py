"""The roles' documented interfaces are true (issue 15): meta/argument_specs.yml and README.md
are what scripts/gen_role_docs.py writes from defaults/main.yml, every description says more
than the variable's name, and the generator refuses a variable nobody described."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").is_file())


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_role_docs", ROOT / "scripts" / "gen_role_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


GEN = load_generator()


def test_generated_files_match_the_defaults() -> None:
    """The committed files equal the generator's output (its --check mode)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_role_docs.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_check_mode_names_a_stale_file(tmp_path: Path) -> None:
    """A comment changed in defaults/main.yml makes the role's two generated files stale."""
    roles = tmp_path / "roles"
    shutil.copytree(ROOT / "roles" / "zed_sdk", roles / "zed_sdk")
    assert GEN.stale_files(roles) == {}
    defaults = roles / "zed_sdk" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("# Where the installer puts the SDK", "# Where it goes"))
    stale = GEN.stale_files(roles)
    assert set(stale) == {roles / "zed_sdk" / "meta" / "argument_specs.yml", roles / "zed_sdk" / "README.md"}
    assert "Where it goes" in stale[roles / "zed_sdk" / "README.md"]


@pytest.mark.parametrize("role", ROLES)
def test_every_description_says_what_the_variable_does(role: str) -> None:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    assert list(options) == list(defaults)
    for name, spec in options.items():
        words = set(re.findall(r"[a-z0-9]+", spec["description"].lower()))
        # more than the name's own words and the role's name (the 46 of issue 15 were only that)
        assert words - set(name.split("_")) - set(role.split("_")), (name, spec["description"])
        assert len(spec["description"]) > len(name) + 10, (name, spec["description"])


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_every_variable_and_an_example(role: str) -> None:
    text = (ROOT / "roles" / role / "README.md").read_text()
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    rows = re.findall(r"^\| `(\w+)` \|", text, re.M)
    assert rows == list(defaults)
    (play,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    roles = [r["role"] for r in yaml.safe_load(play)[0]["roles"]]
    assert roles[0] == "tx2setup.jetson.validate_inventory" and roles[-1] == f"tx2setup.jetson.{role}"


def test_types_come_from_values_or_hints() -> None:
    values: tuple[object, ...] = (True, 3, 1.5, "x", [], {}, "{{ x }}", None)
    assert [GEN.infer_type(v) for v in values] == [
        "bool",
        "int",
        "float",
        "str",
        "list",
        "dict",
        "raw",
        "raw",
    ]
    option = GEN.Option("r_x", "{{ y }}", "What x does.", {"type": "list", "elements": "dict"})
    assert option.spec("f") == {"type": "list", "elements": "dict", "default": "{{ y }}", "description": "What x does."}


def write_role(tmp_path: Path, defaults: str) -> Path:
    role = tmp_path / "roles" / "r"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text(defaults)
    (role / "meta" / "main.yml").write_text("galaxy_info:\n  description: A role.\n")
    return role


def test_choices_and_example_directives(tmp_path: Path) -> None:
    defaults = "# purpose: Does r.\n\n# How r runs.\n# choices: fast, slow\n# example: slow\nr_mode: fast\n"
    role = write_role(tmp_path, defaults)
    doc = GEN.load_role(role)
    spec = yaml.safe_load(GEN.argument_specs(doc))["argument_specs"]["main"]
    assert spec["options"]["r_mode"] == {
        "type": "str",
        "choices": ["fast", "slow"],
        "default": "fast",
        "description": "How r runs.",
    }
    assert spec["description"] == ["Does r."]
    assert "r_mode: slow" in GEN.readme(doc)


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ("# r: does r.\n\n# What x does.\nr_x: 1\n", "the first line must be '# purpose:"),
        ("# purpose: Does r.\n\nr_x: 1\n", "r_x: no comment directly above it"),
        ("# purpose: Does r.\n\n# What x does.\n# type: number\nr_x: 1\n", "r_x: unknown type 'number'"),
    ],
)
def test_undocumented_variable_is_one_line_naming_file_and_key(tmp_path: Path, defaults: str, message: str) -> None:
    role = write_role(tmp_path, defaults)
    with pytest.raises(GEN.DocError) as err:
        GEN.argument_specs(GEN.load_role(role))
    assert message in str(err.value) and "defaults/main.yml" in str(err.value)
