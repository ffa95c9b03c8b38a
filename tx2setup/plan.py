"""A board resolved against the matrix: the concrete versions it must end up with."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tx2setup.errors import MatrixError, PlanError
from tx2setup.fleet import Board, Inventory, origin
from tx2setup.matrix import Matrix, Module, Release, release_of, stack_packages, wheel_mismatch
from tx2setup.matrix import load as load_matrix

ACCEPTANCE_TORCH_FLOOR = (1, 10)


@dataclass(frozen=True)
class BoardPlan:
    name: str
    ansible_host: str
    module: str
    module_name: str
    soc: str
    cuda_arch: str
    jetpack: str
    l4t: str
    ubuntu: str
    python: str
    cuda: str
    cudnn: str
    tensorrt: str
    power_mode_id: int
    power_mode_name: str
    target_fps: float
    components: tuple[str, ...]
    ros_distro: str | None
    torch_version: str | None
    torchvision_version: str | None
    torch_wheel_url: str | None
    torch_sha256: str | None
    torch_index_url: str | None
    zed_sdk_version: str | None
    zed_sdk_url: str | None
    caffe_version: str | None
    caffe_source_url: str | None
    caffe_sha256: str | None
    caffe_use_cudnn: bool | None
    apt_sources: tuple[str, ...]
    emulated: bool
    notes: tuple[str, ...]
    # Added for issue 11, with defaults so older callers keep working:
    # the JetPack packages (name + pinned version prefix) from tx2setup.matrix.stack_packages,
    # the one list the jetpack role installs and verify checks (libcudnn9-cuda-12 on JetPack 6.1+)
    stack_packages: tuple[dict[str, str], ...] = ()
    # the torch wheel's file name where the URL does not end in it (JetPack 4.6's box.com share)
    torch_wheel_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ansible_vars(self) -> dict[str, Any]:
        """The plan as variables for the provisioning play (prefixed, flat)."""
        return {f"plan_{k}": v for k, v in self.to_dict().items() if k not in ("name", "ansible_host")}


def _err(inv: Inventory, board: Board, fieldname: str, msg: str) -> PlanError:
    where = origin(inv.path, board.name, board.groups, fieldname, board.hostvars)
    return PlanError(f"{inv.path}: host {board.name}: {fieldname}: {msg}{where}")


@dataclass(frozen=True)
class _Torch:
    """The plan's torch fields: the matrix's wheel, or the board's override."""

    version: str | None = None
    torchvision: str | None = None
    url: str | None = None
    sha256: str | None = None
    index_url: str | None = None
    wheel_name: str | None = None


def _release_and_module(inv: Inventory, board: Board, matrix: Matrix) -> tuple[Release, Module]:
    """The board's release and its module as that release describes it; refuses a module the release lacks."""
    if board.module not in matrix.modules:
        raise _err(inv, board, "jetson_module", f"unknown module {board.module!r} (known: {', '.join(matrix.modules)})")
    try:
        release = matrix.release(jetpack=board.jetpack)
    except MatrixError as exc:
        raise _err(inv, board, "jetpack", exc.message) from None
    # the release's own nvpmodel table for this module (e.g. MAXN_SUPER on JetPack 6.2)
    module = matrix.module(board.module, jetpack=release.jetpack)
    if board.module not in release.modules:
        can = [r.jetpack for r in matrix.releases if board.module in r.modules]
        span = f"{can[0]} to {can[-1]}" if can else "none"
        raise _err(inv, board, "jetpack", f"{module.name} cannot run JetPack {board.jetpack} (it runs JetPack {span})")
    return release, module


def _power_mode(inv: Inventory, board: Board, module: Module) -> int:
    if board.power_mode is None:
        return module.default_power_mode
    try:
        return module.power_mode_id(board.power_mode)
    except ValueError:
        modes = ", ".join(f"{k} {v}" for k, v in module.power_modes.items())
        raise _err(
            inv, board, "power_mode", f"{module.name} has no power mode {board.power_mode!r} (it has: {modes})"
        ) from None


def _ros(inv: Inventory, board: Board, release: Release, matrix: Matrix) -> str | None:
    if "ros" not in board.components:
        return None
    ros = board.overrides.get("ros_distro", release.ros)
    if ros not in matrix.ros_ubuntu:
        raise _err(inv, board, "ros_distro", f"unknown ROS distro {ros!r} (known: {', '.join(matrix.ros_ubuntu)})")
    if release.ubuntu not in matrix.ros_ubuntu[ros]:
        raise _err(
            inv,
            board,
            "ros_distro",
            f"ROS {ros} is not available for Ubuntu {release.ubuntu} (JetPack {release.jetpack})",
        )
    return ros


def _torch(inv: Inventory, board: Board, release: Release, notes: list[str]) -> _Torch:
    """The torch wheel (matrix or override, which must name one version for the release's Python); adds notes."""
    ov, wheel = board.overrides, release.pytorch
    if "pytorch" not in board.components:
        return _Torch()
    if wheel is None and "torch_wheel_url" not in ov:
        raise _err(
            inv, board, "components", f"pytorch is not available for JetPack {release.jetpack} (no NVIDIA wheel)"
        )
    # the matrix's torchvision, sha256 and index match the matrix's torch only
    matrix_wheel = wheel if "torch_version" not in ov and "torch_wheel_url" not in ov else None
    version = ov.get("torch_version", wheel.version if wheel else None)
    url = ov.get("torch_wheel_url", wheel.url if wheel else None)
    if version and url:
        # emulated boards install the host's CPU wheel into Debian's Python: only the
        # version must agree there, not the release's Python tag
        why = wheel_mismatch(url, version, None if board.emulated else release.python)
        if why:
            raise _err(inv, board, "torch_wheel_url", f"{why} (JetPack {release.jetpack})")
    if matrix_wheel and not matrix_wheel.url_verified:
        index = matrix_wheel.index_url
        where = f"install from {index} (torch=={version}) or " if index else ""
        notes.append(f"torch wheel URL unverified: {where}set torch_wheel_url and torch_version")
    if version and release_of(version)[:2] < ACCEPTANCE_TORCH_FLOOR:
        notes.append(f"torch {version} is below the acceptance benchmark's floor of 1.10")
    return _Torch(
        version=version,
        torchvision=matrix_wheel.torchvision if matrix_wheel else None,
        url=url,
        sha256=matrix_wheel.sha256 if matrix_wheel else None,
        index_url=matrix_wheel.index_url if matrix_wheel else None,
        wheel_name=matrix_wheel.wheel if matrix_wheel and version else None,
    )


def _zed(inv: Inventory, board: Board, release: Release) -> tuple[str | None, str | None]:
    """(ZED SDK version, installer URL): the matrix's, or the board's override."""
    ov, zed = board.overrides, release.zed_sdk
    if "zed_sdk" not in board.components:
        return None, None
    if zed is None and "zed_sdk_url" not in ov:
        raise _err(
            inv, board, "components", f"zed_sdk is not available for JetPack {release.jetpack} (L4T {release.l4t})"
        )
    return ov.get("zed_sdk_version", zed.version if zed else None), ov.get("zed_sdk_url", zed.url if zed else None)


@dataclass(frozen=True)
class _Caffe:
    version: str | None = None
    source_url: str | None = None
    sha256: str | None = None
    use_cudnn: bool | None = None


def _caffe(board: Board, release: Release, matrix: Matrix, notes: list[str]) -> _Caffe:
    """Caffe's source (the matrix's, or the board's override); a note when it must build without cuDNN."""
    if "caffe" not in board.components:
        return _Caffe()
    caffe, ov = matrix.caffe, board.overrides
    use_cudnn = caffe.use_cudnn(release.cudnn)
    if not use_cudnn:
        notes.append(f"caffe {caffe.version} builds without cuDNN here (cuDNN {release.cudnn} removed its API)")
    return _Caffe(
        version=caffe.version,
        source_url=ov.get("caffe_source_url", caffe.url),
        sha256=(caffe.sha256 or None) if "caffe_source_url" not in ov else None,
        use_cudnn=use_cudnn,
    )


def resolve_board(inv: Inventory, board: Board, matrix: Matrix) -> BoardPlan:
    """The board's plan: release and module, power mode, then each component's versions."""
    release, module = _release_and_module(inv, board, matrix)
    mode_id = _power_mode(inv, board, module)
    notes = [release.notes] if release.notes else []
    ros = _ros(inv, board, release, matrix)
    torch = _torch(inv, board, release, notes)
    zed_version, zed_url = _zed(inv, board, release)
    caffe = _caffe(board, release, matrix, notes)
    return BoardPlan(
        name=board.name,
        ansible_host=board.ansible_host,
        module=module.key,
        module_name=module.name,
        soc=module.soc,
        cuda_arch=module.cuda_arch,
        jetpack=release.jetpack,
        l4t=release.l4t,
        ubuntu=release.ubuntu,
        python=release.python,
        cuda=release.cuda,
        cudnn=release.cudnn,
        tensorrt=release.tensorrt,
        power_mode_id=mode_id,
        power_mode_name=module.power_modes[mode_id],
        target_fps=board.target_fps,
        components=board.components,
        ros_distro=ros,
        torch_version=torch.version,
        torchvision_version=torch.torchvision,
        torch_wheel_url=torch.url,
        torch_sha256=torch.sha256,
        torch_index_url=torch.index_url,
        zed_sdk_version=zed_version,
        zed_sdk_url=zed_url,
        caffe_version=caffe.version,
        caffe_source_url=caffe.source_url,
        caffe_sha256=caffe.sha256,
        caffe_use_cudnn=caffe.use_cudnn,
        apt_sources=tuple(release.apt_lines(module.soc, board.overrides.get("nvidia_apt_base"))),
        emulated=board.emulated,
        notes=tuple(notes),
        stack_packages=tuple(stack_packages(release)),
        torch_wheel_name=torch.wheel_name,
    )


def resolve(inv: Inventory, matrix: Matrix | None = None) -> list[BoardPlan]:
    """Resolve every board; the first inconsistent board raises PlanError (exit 2)."""
    m = matrix or load_matrix()
    return [resolve_board(inv, b, m) for b in inv.boards]
