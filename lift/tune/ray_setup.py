"""Start or join Ray for a study, print where its dashboard is, and check trial resources.

A local instance gets the dashboard bound to 127.0.0.1 (``--dashboard-host`` to change) and keeps
Ray 2.60's token authentication on: the browser asks for the token stored in
``~/.ray/auth_token``. The study CLI also keeps a local instance's node address, and so Ray's
GCS, raylet and object-store ports, on 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, set
before ray is imported; see ``studies/context_ablation.py``); the token protects them too.
With ``--address`` (or ``RAY_ADDRESS``) the study joins an existing cluster instead and leaves it
running at the end. Joining is only ever explicit: with neither, the study starts a Ray of its own
(``address="local"``) even when the machine runs a ``ray start`` cluster or holds Ray's address
file of a dead one (Ray's default would join, or hang on, that cluster). Before joining, the head's
port is probed with a plain TCP connect (:data:`JOIN_PROBE_TIMEOUT_S`): Ray itself retries an
unreachable address for minutes.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import ray

from lift.tune.study_config import StudyError

AUTH_TOKEN_PATH = Path("~/.ray/auth_token")
# A head node on a reachable network answers a TCP connect in milliseconds; a few seconds cover
# a slow VPN without leaving the user to wait on Ray's own minutes of retries.
JOIN_PROBE_TIMEOUT_S = 5.0


@dataclass
class RaySession:
    started_here: bool
    address: str
    dashboard_url: str | None
    owned_by_caller: bool = False

    def describe(self) -> str:
        where = "a local Ray instance" if self.started_here else f"the Ray cluster at {self.address}"
        lines = [f"Ray: {where}"]
        if self.dashboard_url:
            url = self.dashboard_url if "://" in self.dashboard_url else f"http://{self.dashboard_url}"
            lines.append(f"Ray dashboard: {url}")
            if os.environ.get("RAY_AUTH_MODE", "").lower() != "disabled":
                lines.append(f"  it asks for the cluster's auth token: `cat {AUTH_TOKEN_PATH}` on the head node "
                             "(or `ray get-auth-token`)")
        elif not self.owned_by_caller:
            lines.append("Ray dashboard: not running on this cluster (a local Ray starts one when ray[default] is installed)")
        return "\n".join(lines)


@dataclass(frozen=True)
class JoinTarget:
    """A cluster to join and where its address came from (for the error messages)."""
    address: str
    source: str  # "--address" or "RAY_ADDRESS"

    def named(self) -> str:
        """The address as the user gave it: `--address X` or `RAY_ADDRESS=X (environment variable)`."""
        if self.source == "--address":
            return f"--address {self.address}"
        return f"{self.source}={self.address} (environment variable)"

    def undo(self) -> str:
        return "drop --address" if self.source == "--address" else f"unset {self.source}"


def join_target(address: str | None) -> JoinTarget | None:
    """The cluster to join: `address` (--address), else $RAY_ADDRESS, else None (start a local Ray)."""
    if address:
        return JoinTarget(address, "--address")
    env = os.environ.get("RAY_ADDRESS", "").strip()
    return JoinTarget(env, "RAY_ADDRESS") if env else None


def head_endpoint(target: JoinTarget) -> tuple[str, int]:
    """(host, port) that must answer for `target` to be joinable: the GCS of HOST:PORT, the Ray
    Client server of ray://HOST:PORT, or for `auto` the cluster named in Ray's address file."""
    text = target.address
    if text == "auto":
        text = _auto_address(target)
    text = text.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise StudyError(f"{target.named()}: expected HOST:PORT of a Ray head node (e.g. 10.0.0.5:6379), "
                         f"ray://HOST:PORT or auto; {target.undo()} to start a local Ray")
    return host.strip("[]"), int(port)


def _auto_address(target: JoinTarget) -> str:
    """Where `auto` points: the last `ray start` cluster recorded in Ray's address file."""
    # Here, for `auto` only: Ray keeps the file's location private; its own CLI reads it with this.
    from ray._private.services import find_bootstrap_address

    found = find_bootstrap_address(None)
    if not found:
        raise StudyError(f"{target.named()}: no Ray cluster was started on this machine (`ray start --head`); "
                         f"give its HOST:PORT, or {target.undo()} to start a local Ray")
    return found


def probe_head(target: JoinTarget, timeout_s: float = JOIN_PROBE_TIMEOUT_S) -> None:
    """Fail in at most `timeout_s` when nothing listens where `target` points."""
    host, port = head_endpoint(target)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as err:
        why = f"no answer within {timeout_s:g} s" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise StudyError(f"{target.named()}: no Ray head node answers at {host}:{port} ({why}); start it with "
                         f"`ray start --head`, fix the address, or {target.undo()} to start a local Ray") from None


def connect(address: str | None = None, *, dashboard_host: str = "127.0.0.1", include_dashboard: bool = True,
            num_cpus: int | None = None, num_gpus: int | None = None, log_to_driver: bool = True) -> RaySession:
    """Join `address` (or $RAY_ADDRESS), reuse an initialised Ray, or start a local instance of
    this process's own (never an existing cluster found on the machine)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        # The caller owns this Ray (tests, notebooks): use it as is and leave it running.
        return RaySession(False, ray.get_runtime_context().gcs_address, None, owned_by_caller=True)
    target = join_target(address)
    if target is not None:
        probe_head(target)
        try:
            info = ray.init(address=target.address, log_to_driver=log_to_driver)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise StudyError(f"{target.named()}: could not join the Ray cluster: {err}") from err
        return RaySession(False, info.address_info.get("address") or target.address, info.dashboard_url or None)
    info = ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=include_dashboard,
                    dashboard_host=dashboard_host, log_to_driver=log_to_driver)
    return RaySession(True, info.address_info.get("address", "local"), info.dashboard_url or None)


def disconnect(session: RaySession) -> None:
    """Shut down what this process started or joined (a joined cluster keeps running); a Ray
    initialised by the caller is left alone."""
    if ray.is_initialized() and not session.owned_by_caller:
        ray.shutdown()


@dataclass
class Capacity:
    """How many trials of the requested size the cluster can run at once."""
    cpus: float
    gpus: float
    slots: int


def check_trial_resources(cpus_per_trial: float, gpus_per_trial: float) -> Capacity:
    """Fail now, with a message, if no node can ever host one trial (it would pend forever)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total_cpu = sum(n["Resources"].get("CPU", 0.0) for n in nodes)
    total_gpu = sum(n["Resources"].get("GPU", 0.0) for n in nodes)
    if gpus_per_trial > 0 and total_gpu == 0:
        raise StudyError(
            f"--gpus-per-trial {gpus_per_trial:g}: the Ray cluster has no GPU (resources: {total_cpu:g} CPUs, 0 GPUs); "
            "a trial would wait forever. Run with --gpus-per-trial 0 on this machine, or join a cluster with GPUs "
            "via --address")
    fits = [n for n in nodes if n["Resources"].get("CPU", 0.0) >= cpus_per_trial
            and n["Resources"].get("GPU", 0.0) >= gpus_per_trial]
    if not fits:
        biggest = max(((n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0)) for n in nodes), default=(0, 0))
        raise StudyError(
            f"--cpus-per-trial {cpus_per_trial:g} --gpus-per-trial {gpus_per_trial:g}: no node of the Ray cluster has "
            f"that much (largest node: {biggest[0]:g} CPUs, {biggest[1]:g} GPUs); a trial would wait forever")
    slots = 0
    for n in nodes:
        per_cpu = math.floor(n["Resources"].get("CPU", 0.0) / cpus_per_trial + 1e-9)
        per_gpu = math.floor(n["Resources"].get("GPU", 0.0) / gpus_per_trial + 1e-9) if gpus_per_trial > 0 else per_cpu
        slots += max(0, min(per_cpu, per_gpu))
    return Capacity(total_cpu, total_gpu, slots)
