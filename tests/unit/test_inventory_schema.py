"""The declared schema of a board's variables (tx2setup/inventory_schema.py), without Ansible:
which error is reported first, how Ansible's typed values are read, and that the play
templates exactly the variables the schema reads. The wording of each error is held by
tests/unit/test_inventory_errors.py and tests/security/test_hostile_inventories.py."""

from __future__ import annotations

from typing import Any

import pytest

from tx2setup import inventory_schema as schema
from tx2setup import playvars

GOOD: dict[str, Any] = {"ansible_host": "10.0.0.1", "jetson_module": "tx2", "jetpack": "4.6.4"}


def problem(hostvars: dict[str, Any], name: str = "b1") -> tuple[str, str]:
    with pytest.raises(schema.FieldProblem) as exc:
        schema.validate(name, hostvars)
    return exc.value.field, exc.value.message


@pytest.mark.parametrize(
    ("hostvars", "field"),
    [
        # every variable bad: a control character anywhere tx2setup reads is named before all else
        ({"ansible_host": "a;b", "target_fps": 0, "ansible_ssh_extra_args": "x\ny"}, "ansible_ssh_extra_args"),
        # then the fields in their declared order
        ({**GOOD, "ansible_host": "a;b", "target_fps": 0, "components": "gazebo"}, "ansible_host"),
        ({**GOOD, "jetson_module": None, "target_fps": 0}, "jetson_module"),
        ({**GOOD, "jetpack": "four", "l4t": "abc", "power_mode": "0;r"}, "jetpack"),
        ({**GOOD, "l4t": "99.9", "target_fps": "fast"}, "l4t"),
        ({**GOOD, "target_fps": "fast", "components": 5, "torch_version": "abc"}, "target_fps"),
        # the pairing of overrides comes last, once every field is well-formed
        ({**GOOD, "torch_version": "2.1.0", "zed_sdk_url": "nope"}, "zed_sdk_url"),
        ({**GOOD, "torch_version": "2.1.0"}, "torch_wheel_url"),
    ],
)
def test_the_first_bad_variable_in_declared_order_is_reported(hostvars: dict[str, Any], field: str) -> None:
    assert problem(hostvars)[0] == field


def test_the_host_name_is_checked_before_its_variables() -> None:
    assert problem({"ansible_host": "x\n"}, name="car;reboot")[0] == "name"


@pytest.mark.parametrize(
    ("hostvars", "field", "message"),
    [
        ({**GOOD, "ansible_host": "  "}, "ansible_host", schema.MISSING["ansible_host"]),
        ({k: v for k, v in GOOD.items() if k != "ansible_host"}, "ansible_host", schema.MISSING["ansible_host"]),
        ({k: v for k, v in GOOD.items() if k != "jetson_module"}, "jetson_module", schema.MISSING["jetson_module"]),
        ({**GOOD, "jetson_module": None}, "jetson_module", schema.MISSING["jetson_module"]),
        ({k: v for k, v in GOOD.items() if k != "jetpack"}, "jetpack", schema.MISSING["jetpack"]),
    ],
)
def test_a_missing_variable_says_what_it_is_for(hostvars: dict[str, Any], field: str, message: str) -> None:
    assert problem(hostvars) == (field, message)


def test_a_message_quotes_the_value_as_given() -> None:
    # the value holds the name of the message's own context key: it must come back verbatim
    assert problem({**GOOD, "power_mode": "{field}{why};"}) == (
        "power_mode",
        "'{field}{why};' holds characters that are unsafe in a command",
    )
    assert problem({**GOOD, "ansible_ssh_common_args": "{{ x }} {field}"}) == (
        "ansible_ssh_common_args",
        "'{{ x }} {field}' holds Jinja markup; tx2setup reads this value as literal text",
    )


def test_values_are_read_as_ansible_types_them() -> None:
    # an INI host line gives floats and ints (ast.literal_eval), a YAML list stays a list
    board = schema.validate(
        "b1", {**GOOD, "jetpack": 6.0, "jetson_module": "agx-orin", "ansible_port": "2201", "components": "ros, caffe"}
    )
    assert (board.jetpack, board.ansible_port, board.components) == ("6.0", 2201, ("ros", "caffe"))
    assert schema.validate("b1", {**GOOD, "components": ["ros", "ros"]}).components == ("ros",)
    assert schema.validate("b1", GOOD).components == schema.COMPONENTS
    assert schema.validate("b1", GOOD).target_fps == schema.DEFAULT_TARGET_FPS


def test_l4t_gives_the_jetpack_and_must_agree_with_it() -> None:
    board = schema.validate("b1", {**GOOD, "jetpack": None, "l4t": "32.7.4"})
    assert board.release_jetpack == "4.6.4"
    assert problem({**GOOD, "jetpack": "4.6.1", "l4t": "32.7.4"}) == (
        "l4t",
        "L4T 32.7.4 is JetPack 4.6.4, but jetpack is 4.6.1",
    )


def test_overrides_are_the_override_fields_given() -> None:
    url = "http://10.0.0.9/torch-1.10.0-cp36-cp36m-linux_aarch64.whl"
    board = schema.validate("b1", {**GOOD, "torch_version": "1.10.0", "torch_wheel_url": url, "ros_distro": None})
    assert board.overrides == {"torch_version": "1.10.0", "torch_wheel_url": url}


def test_the_play_templates_every_variable_the_schema_reads() -> None:
    # the collection's plan plugin hands over playvars.BOARD_KEYS only: one missing would be unset in the play
    assert set(playvars.BOARD_KEYS) == set(schema.BoardVars.model_fields)
