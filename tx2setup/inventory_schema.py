"""What a board's inventory variables must look like, declared as a pydantic model.

`BoardVars` lists every variable tx2setup reads from a host (after Ansible resolved
group_vars, host_vars and inheritance), its type, default and the check that refuses a bad
value, with the one-line message the user sees. Fields are declared in the order they are
checked: the first error in that order is the one reported. Where the error came from (the
inventory, a group_vars file) is not this module's business: see inventory_errors.py.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tx2setup.errors import MatrixError
from tx2setup.matrix import load as load_matrix

COMPONENTS = ("ros", "zed_sdk", "caffe", "pytorch")
DEFAULT_TARGET_FPS = 15.0  # the Z2Color acceptance profile: 15 Hz on a TX2
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SAFE_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/+@=,-]*$")
SAFE_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")
URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9_.:/+@=,%~-]*)?$")
# An IPv6 scope id names an interface (at most 15 characters: IFNAMSIZ is 16 with its NUL,
# netdevice(7)) or its index; Python's ipaddress accepts any text after the '%'.
SAFE_SCOPE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# C0 and C1 control characters (newline, ESC, NUL, ...): one would end an ssh_config line,
# split a log line or drive the terminal
CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]")
JINJA_MARKUP = re.compile(r"\{\{|\{%|\{#")
# read as literal text by tx2setup's own SSH layer (connection.py), where Ansible would template them
LITERAL_SSH_VARS = (
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
)
MAX_URL = 2048
# the cache stores an artifact under its URL's file name plus ".part" (a name holds 255 bytes)
MAX_URL_FILE_NAME = 200
# Overrides that only make sense together: a wheel URL names one torch version.
OVERRIDE_PAIRS = (("torch_version", "torch_wheel_url"),)
OVERRIDE_FIELDS = (
    "ros_distro",
    "torch_version",
    "torch_wheel_url",
    "zed_sdk_version",
    "zed_sdk_url",
    "caffe_source_url",
    "nvidia_apt_base",
)
# What a required variable's absence is called (pydantic's own word is "Field required").
MISSING = {
    "ansible_host": "missing (every board needs the address Ansible connects to)",
    "jetson_module": "missing (one of tx2, tx2-nx, xavier-nx, agx-xavier, orin-nx, orin-nano, agx-orin)",
    "jetpack": "missing (set jetpack or l4t on the host or inherit it from a group)",
}


class FieldProblem(Exception):
    """The first bad variable of a board: its name and what is wrong (no file, no host)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _bad(message: str, field: str | None = None) -> PydanticCustomError:
    # pydantic fills the template's {names} from the context in the context's order: `field`
    # goes first, so a message that happens to hold "{field}" is left as written
    context = {"field": field, "why": message} if field else {"why": message}
    return PydanticCustomError("tx2setup_inventory", "{why}", context)


# Values arrive as Ansible resolved them: an INI host line's `jetpack=6.0` is a float and
# `ansible_port=22` an int (ansible/ansible, lib/ansible/plugins/inventory/ini.py,
# _parse_value: ast.literal_eval). Each check reads the value's text, as Ansible's templating would.
def _safe(value: Any) -> str:
    if not SAFE_VALUE.match(str(value)):
        raise _bad(f"{value!r} holds characters that are unsafe in a command")
    return str(value)


def _safe_nonempty(value: Any) -> str:
    if str(value) == "":
        raise _bad(f"{value!r} holds characters that are unsafe in a command")
    return _safe(value)


def _module(value: Any) -> str:
    if value is None:
        raise _bad(MISSING["jetson_module"])
    return _safe(value)


def _safe_text(value: Any) -> str:
    return _safe(str(value))  # an override's message quotes its text


def _address(value: Any) -> str:
    host = "" if value is None else str(value)
    if host.strip() == "":
        raise _bad(MISSING["ansible_host"])
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not SAFE_HOSTNAME.match(host):
            raise _bad(f"{host!r} is neither an IP address nor a valid host name") from None
    if "%" in host and not SAFE_SCOPE.match(host.split("%", 1)[1]):
        raise _bad(f"{host!r}: the IPv6 scope id after '%' must be an interface name or index")
    return host


def _port(value: Any) -> int:
    if not re.fullmatch(r"\d{1,5}", str(value)) or not 0 < int(str(value)) < 65536:
        raise _bad(f"{value!r} is not a TCP port (1-65535)")
    return int(str(value))


def _user(value: Any) -> str:
    if not SAFE_USER.match(str(value)):
        raise _bad(f"{value!r} is not a plain user name (it is used in commands)")
    return str(value)


def _jetpack(value: Any) -> str:
    if not re.fullmatch(r"\d+(\.\d+){0,3}", str(value)):
        raise _bad(f"{str(value)!r} is not a version like 4.6.4")
    return str(value)


def _positive_number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(f"{value!r} is not a number") from None
    if not (number > 0 and not math.isinf(number)):  # NaN fails `> 0` as well
        raise _bad(f"{value!r} must be a positive number")
    return number


def _components(value: Any) -> tuple[str, ...]:
    comps = [c.strip() for c in value.split(",") if c.strip()] if isinstance(value, str) else value
    if not isinstance(comps, list):
        raise _bad("must be a list (any of ros, zed_sdk, caffe, pytorch)")
    for comp in comps:
        if comp not in COMPONENTS:
            raise _bad(f"unknown component {comp!r} (any of {', '.join(COMPONENTS)})")
    return tuple(dict.fromkeys(comps))


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not pattern.match(text):
            raise _bad(f"{text!r} is not {what}")
        return text

    return check


def _url_length(url: str) -> str:
    if len(url) > MAX_URL:
        raise _bad(f"the URL is {len(url)} characters long (at most {MAX_URL})")
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if len(name.encode()) > MAX_URL_FILE_NAME:
        raise _bad(f"the URL's file name is {len(name.encode())} bytes long (at most {MAX_URL_FILE_NAME})")
    return url


# The types of the schema. BeforeValidators see Ansible's value; AfterValidators the text.
SafeText = Annotated[str, BeforeValidator(_safe)]
Module = Annotated[str, BeforeValidator(_module)]
SafeId = Annotated[str, BeforeValidator(_safe_nonempty)]
Address = Annotated[str, BeforeValidator(_address)]
Port = Annotated[int, BeforeValidator(_port)]
UserName = Annotated[str, BeforeValidator(_user)]
Version = Annotated[str, BeforeValidator(_jetpack)]
PositiveNumber = Annotated[float, BeforeValidator(_positive_number)]
Components = Annotated[tuple[str, ...], BeforeValidator(_components)]
# Overrides: safe text first, then the shape each one must have
Url = Annotated[
    str, BeforeValidator(_safe_text), AfterValidator(_matching(URL_RE, "an http(s) URL")), AfterValidator(_url_length)
]
RosDistro = Annotated[
    str,
    BeforeValidator(_safe_text),
    AfterValidator(_matching(re.compile(r"^[a-z]+$"), "a ROS distro name like melodic")),
]
TorchVersion = Annotated[
    str,
    BeforeValidator(_safe_text),
    AfterValidator(
        _matching(re.compile(r"^\d+\.\d+(\.\d+)?((a|b|rc)\d+)?(\+[A-Za-z0-9.]+)?$"), "a torch version like 1.10.0")
    ),
]
ZedVersion = Annotated[
    str,
    BeforeValidator(_safe_text),
    AfterValidator(_matching(re.compile(r"^\d+\.\d+(\.\d+)?$"), "a ZED SDK version like 3.8 or 3.8.2")),
]
Flag = Annotated[bool, BeforeValidator(bool)]


def _tx2setup_reads(key: str) -> bool:
    return key.startswith(("ansible_", "tx2setup_")) or key in BoardVars.model_fields


def _text_problem(key: str, value: Any) -> str | None:
    """A control character, or Jinja markup where tx2setup's SSH layer reads the value as literal text."""
    for text in value if isinstance(value, list) else [value]:
        if not isinstance(text, str):
            continue  # a vaulted value is not text here
        bad = CONTROL_CHAR.search(text)
        if bad:
            return f"holds a control character ({bad.group()!r} at offset {bad.start()}): {text[:60]!r}"
        if key in LITERAL_SSH_VARS and JINJA_MARKUP.search(text):
            return f"{text[:80]!r} holds Jinja markup; tx2setup reads this value as literal text"
    return None


class BoardVars(BaseModel):
    """A board's variables as tx2setup reads them. Unknown variables are Ansible's business."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ansible_host: Address
    ansible_port: Port | None = None
    ansible_user: UserName | None = None
    board_serial: SafeId | None = None
    usb_port: SafeId | None = None
    jetson_module: Module
    jetpack: Version | None = None
    # validated even when absent: it says when neither jetpack nor l4t is given
    l4t: str | None = Field(default=None, validate_default=True)
    power_mode: SafeText | None = None
    target_fps: PositiveNumber = DEFAULT_TARGET_FPS
    components: Components = COMPONENTS
    ros_distro: RosDistro | None = None
    torch_version: TorchVersion | None = None
    torch_wheel_url: Url | None = None
    zed_sdk_version: ZedVersion | None = None
    zed_sdk_url: Url | None = None
    caffe_source_url: Url | None = None
    nvidia_apt_base: Url | None = None
    tx2setup_emulated: Flag = False

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        """Checked first, for every variable tx2setup reads (also those outside this model, such
        as ansible_ssh_common_args): each would reach a command, a log line or ssh_config."""
        for key in sorted(k for k in data if _tx2setup_reads(k)):
            problem = _text_problem(key, data[key])
            if problem:
                raise _bad(problem, key)
        return data

    @field_validator("l4t", mode="before")
    @classmethod
    def _l4t_agrees(cls, value: Any, info: ValidationInfo) -> str | None:
        """`l4t` names a release of the matrix, and `jetpack`, if given too, is that release's."""
        if "jetpack" not in info.data:
            return None  # jetpack itself is malformed: that is the error to report
        jetpack = info.data["jetpack"]
        if value is None:
            if jetpack is None:
                raise _bad(MISSING["jetpack"], "jetpack")
            return None
        l4t = str(value)
        if not re.fullmatch(r"\d+(\.\d+){1,3}", l4t):
            raise _bad(f"{l4t!r} is not an L4T version like 32.7.4")
        try:
            release = load_matrix().release(l4t=l4t)
        except MatrixError as exc:
            raise _bad(exc.message) from None
        if jetpack is not None and jetpack != release.jetpack:
            raise _bad(f"L4T {l4t} is JetPack {release.jetpack}, but jetpack is {jetpack}")
        return l4t

    @model_validator(mode="after")
    def _overrides_paired(self) -> BoardVars:
        for a, b in OVERRIDE_PAIRS:
            given = {k for k in (a, b) if getattr(self, k) is not None}
            if len(given) == 1:
                (have,) = given
                need = b if have == a else a
                raise _bad(f"missing: {have} is overridden, so {need} must be given too (they name one wheel)", need)
        return self

    @property
    def release_jetpack(self) -> str:
        """The JetPack this board runs: `jetpack`, else the one of `l4t`."""
        if self.l4t is None:
            assert self.jetpack is not None  # _l4t_agrees refused a board with neither
            return self.jetpack
        return load_matrix().release(l4t=self.l4t).jetpack

    @property
    def overrides(self) -> dict[str, str]:
        return {k: v for k in OVERRIDE_FIELDS if (v := getattr(self, k)) is not None}


def check_host_name(name: str) -> None:
    if not SAFE_NAME.match(name):
        raise FieldProblem(
            "name", "host name may only hold letters, digits, '.', '_' and '-' (it is used in paths and commands)"
        )


def validate(name: str, hostvars: dict[str, Any]) -> BoardVars:
    """The board's variables checked against the schema, or FieldProblem for the first bad one."""
    check_host_name(name)
    try:
        return BoardVars.model_validate(hostvars)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        context = first.get("ctx") or {}
        field = str(context.get("field") or first["loc"][0])
        message = MISSING.get(field, first["msg"]) if first["type"] == "missing" else first["msg"]
        raise FieldProblem(field, message) from None
