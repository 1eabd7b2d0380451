"""A Beam portable runner for tests: a job server and an external worker pool, each its own process.

This is the protocol Flink, Spark and Dataflow speak, without Java: Beam's Python
``local_job_service_main`` accepts jobs over gRPC and hands every bundle to SDK workers that the
``worker_pool_main`` pool starts as separate ``python`` processes. A pipeline submitted with
:attr:`PortableBeam.pipeline_args` therefore shares nothing in memory with the test process: its
functions are pickled, its data crosses gRPC, its files go through the local disk.

Both servers listen on free ports on 127.0.0.1 and are ready when their gRPC channel is. Their
output goes to log files (shown when a start fails). The pool starts workers with a bare
``python``, so the venv's ``bin`` comes first on its PATH (else the workers die and the job waits
for them forever), and PYTHONPATH holds the repository so workers import this checkout's
``mlpipe``. Each server runs in its own process group, which :meth:`PortableBeam.stop` kills
whole: the pool's workers are in its group, so none outlives the test (the pool's own clean-up is
an ``atexit`` hook that a signal never reaches).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.mariadb import _die_with_parent_hook, _log_tail

REPO = Path(__file__).resolve().parents[2]

__all__ = ["PortableBeam", "PortableBeamStartError", "start_portable_beam"]


class PortableBeamStartError(RuntimeError):
    """The job server or the worker pool did not come up in time."""


@dataclass
class PortableBeam:
    """A running job server and worker pool; submit with :attr:`pipeline_args`."""

    job_port: int
    worker_port: int
    logdir: Path
    processes: list[subprocess.Popen[bytes]] = field(repr=False)

    @property
    def pipeline_args(self) -> list[str]:
        return [
            "--runner=PortableRunner",
            f"--job_endpoint=127.0.0.1:{self.job_port}",
            "--environment_type=EXTERNAL",
            f"--environment_config=127.0.0.1:{self.worker_port}",
        ]

    def worker_pids(self) -> list[int]:
        """The live processes of the pool's group other than the pool itself (its SDK workers)."""
        pool = self.processes[1]
        return [pid for pid in _group_members(pool.pid) if pid != pool.pid]

    def wait_ready(self, timeout: float = 120) -> None:
        """Return once both servers answer gRPC (a server that exits or stays silent is an error
        showing its log)."""
        deadline = time.monotonic() + timeout
        for process, port, name in zip(
            self.processes, (self.job_port, self.worker_port), ("job_server", "worker_pool"), strict=True
        ):
            _wait_for_grpc(process, port, name, self.logdir, deadline)

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM each server's whole process group, SIGKILL what is left after ``timeout``."""
        for process in self.processes:
            _kill_group(process, timeout)


def start_portable_beam(logdir: Path, timeout: float = 120, wait: bool = True) -> PortableBeam:
    """Start the job server and the worker pool; return once both accept gRPC calls, or at once
    with ``wait=False`` (then call :meth:`PortableBeam.wait_ready` before submitting: the servers
    take seconds to import Beam, which the caller can overlap with other work)."""
    logdir.mkdir(parents=True, exist_ok=True)
    env = _environment()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        job_port, worker_port = _free_port(), _free_port()
        for name, module, port_flag in (
            ("job_server", "apache_beam.runners.portability.local_job_service_main", f"--port={job_port}"),
            ("worker_pool", "apache_beam.runners.worker.worker_pool_main", f"--service_port={worker_port}"),
        ):
            with (logdir / f"{name}.log").open("ab") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", module, port_flag],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        env=env,
                        cwd=logdir,
                        start_new_session=True,  # its own process group: the pool's workers join it
                        preexec_fn=_die_with_parent_hook(),
                    )
                )
        beam = PortableBeam(job_port, worker_port, logdir, processes)
        atexit.register(beam.stop)
        if wait:
            beam.wait_ready(timeout)
        return beam
    except BaseException:
        for process in processes:
            _kill_group(process, 5)
        raise


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_for_grpc(
    process: subprocess.Popen[bytes], port: int, name: str, logdir: Path, deadline: float
) -> None:
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        while True:
            if process.poll() is not None:
                raise PortableBeamStartError(
                    f"{name} exited with code {process.returncode}{_log_tail(logdir / f'{name}.log')}"
                )
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise PortableBeamStartError(
                        f"{name} not ready on 127.0.0.1:{port}{_log_tail(logdir / f'{name}.log')}"
                    ) from None
    finally:
        channel.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except ProcessLookupError:
                continue
    return members


def _kill_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop the process group this fixture started (its leader is ``process``), then reap the leader."""
    pgid = process.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    end = time.monotonic() + timeout
    while _group_members(pgid) and time.monotonic() < end:
        process.poll()
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
