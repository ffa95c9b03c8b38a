"""A board resolved against the matrix: the concrete versions it must end up with."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tx2setup.errors import MatrixError, PlanError
from tx2setup.fleet import Board, Inventory, origin
from tx2setup.matrix import Matrix, release_of, stack_packages, wheel_mismatch
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


def resolve_board(inv: Inventory, board: Board, matrix: Matrix) -> BoardPlan:
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
    if board.power_mode is None:
        mode_id = module.default_power_mode
    else:
        try:
            mode_id = module.power_mode_id(board.power_mode)
        except ValueError:
            modes = ", ".join(f"{k} {v}" for k, v in module.power_modes.items())
            raise _err(
                inv, board, "power_mode", f"{module.name} has no power mode {board.power_mode!r} (it has: {modes})"
            ) from None
    notes = [release.notes] if release.notes else []
    comps = board.components
    ov = board.overrides

    ros = None
    if "ros" in comps:
        ros = ov.get("ros_distro", release.ros)
        if ros not in matrix.ros_ubuntu:
            raise _err(inv, board, "ros_distro", f"unknown ROS distro {ros!r} (known: {', '.join(matrix.ros_ubuntu)})")
        if release.ubuntu not in matrix.ros_ubuntu[ros]:
            raise _err(
                inv,
                board,
                "ros_distro",
                f"ROS {ros} is not available for Ubuntu {release.ubuntu} (JetPack {release.jetpack})",
            )

    torch_v = tv_v = torch_url = torch_sha = torch_index = None
    if "pytorch" in comps:
        if release.pytorch is None and "torch_wheel_url" not in ov:
            raise _err(
                inv, board, "components", f"pytorch is not available for JetPack {release.jetpack} (no NVIDIA wheel)"
            )
        torch_v = ov.get("torch_version", release.pytorch.version if release.pytorch else None)
        # the matrix's torchvision matches the matrix's torch only
        overridden = "torch_version" in ov or "torch_wheel_url" in ov
        tv_v = release.pytorch.torchvision if release.pytorch and not overridden else None
        torch_url = ov.get("torch_wheel_url", release.pytorch.url if release.pytorch else None)
        torch_sha = release.pytorch.sha256 if release.pytorch and not overridden else None
        torch_index = release.pytorch.index_url if release.pytorch and not overridden else None
        if torch_v and torch_url:
            # emulated boards install the host's CPU wheel into Debian's Python: only the
            # version must agree there, not the release's Python tag
            why = wheel_mismatch(torch_url, torch_v, None if board.emulated else release.python)
            if why:
                raise _err(inv, board, "torch_wheel_url", f"{why} (JetPack {release.jetpack})")
        if release.pytorch and not overridden and not release.pytorch.url_verified:
            where = (
                f"install from {release.pytorch.index_url} (torch=={torch_v}) or " if release.pytorch.index_url else ""
            )
            notes.append(f"torch wheel URL unverified: {where}set torch_wheel_url and torch_version")
        if torch_v and release_of(torch_v)[:2] < ACCEPTANCE_TORCH_FLOOR:
            notes.append(f"torch {torch_v} is below the acceptance benchmark's floor of 1.10")

    zed_v = zed_url = None
    if "zed_sdk" in comps:
        if release.zed_sdk is None and "zed_sdk_url" not in ov:
            raise _err(
                inv, board, "components", f"zed_sdk is not available for JetPack {release.jetpack} (L4T {release.l4t})"
            )
        zed_v = ov.get("zed_sdk_version", release.zed_sdk.version if release.zed_sdk else None)
        zed_url = ov.get("zed_sdk_url", release.zed_sdk.url if release.zed_sdk else None)

    caffe_cudnn = matrix.caffe.use_cudnn(release.cudnn) if "caffe" in comps else None
    if caffe_cudnn is False:
        notes.append(f"caffe {matrix.caffe.version} builds without cuDNN here (cuDNN {release.cudnn} removed its API)")

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
        components=comps,
        ros_distro=ros,
        torch_version=torch_v,
        torchvision_version=tv_v,
        torch_wheel_url=torch_url,
        torch_sha256=torch_sha,
        torch_index_url=torch_index,
        zed_sdk_version=zed_v,
        zed_sdk_url=zed_url,
        caffe_version=matrix.caffe.version if "caffe" in comps else None,
        caffe_source_url=ov.get("caffe_source_url", matrix.caffe.url) if "caffe" in comps else None,
        caffe_sha256=(matrix.caffe.sha256 or None) if "caffe" in comps and "caffe_source_url" not in ov else None,
        caffe_use_cudnn=caffe_cudnn,
        apt_sources=tuple(release.apt_lines(module.soc, ov.get("nvidia_apt_base"))),
        emulated=board.emulated,
        notes=tuple(notes),
        stack_packages=tuple(stack_packages(release)),
        torch_wheel_name=release.pytorch.wheel if release.pytorch and torch_v and not overridden else None,
    )


def resolve(inv: Inventory, matrix: Matrix | None = None) -> list[BoardPlan]:
    """Resolve every board; the first inconsistent board raises PlanError (exit 2)."""
    m = matrix or load_matrix()
    return [resolve_board(inv, b, m) for b in inv.boards]
