"""`bertpipe serve` in a child process: start it on free ports, wait until it answers, stop it.

For tests and benchmarks that need a real server process (its own interpreter, as in
production) rather than a server thread inside the caller. The server prints one ready line
(`ready_line`) once the model is loaded and the ports are open; `start` reads the ports from it.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
_READY = re.compile(r"^serving (?P<name>\S+) versions \[[\d, ]*\] from .*: REST "
                    r"http://(?P<host>[^:/\s]+):(?P<rest>\d+)/v1/models/\S+"
                    r"(?:, gRPC [^:\s]+:(?P<grpc>\d+))?$")


def ready_line(name: str, versions: Sequence[int], model_root: str, host: str, rest_port: int,
               grpc_port: Optional[int]) -> str:
    """What the server prints when it is ready to answer."""
    grpc_part = f", gRPC {host}:{grpc_port}" if grpc_port is not None else ""
    return (f"serving {name} versions {list(versions)} from {model_root}: REST "
            f"http://{host}:{rest_port}/v1/models/{name}{grpc_part}")


@dataclasses.dataclass
class ServerProcess:
    process: subprocess.Popen
    log_path: pathlib.Path
    model_name: str
    rest_url: str  # http://host:port
    grpc_target: Optional[str]  # host:port, None without gRPC

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def stop(self, timeout: float = 60) -> str:
        """SIGTERM, then waits; returns what it printed after the ready line."""
        self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output


def start(model_root: str, log_path: pathlib.Path, flags: Sequence[str] = (),
          env: Optional[Dict[str, str]] = None, timeout: float = 300) -> ServerProcess:
    """`python -m pipeline.cli serve --model-root ... --port 0 --grpc-port 0 FLAGS`, ready."""
    command: List[str] = [sys.executable, "-m", "pipeline.cli", "serve", "--model-root",
                          str(model_root), "--port", "0", "--grpc-port", "0", *flags]
    if env is None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])))
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=log, text=True)
    try:
        # The first stdout line is the ready line; "" means the process ended first.
        line = _read_line(process, timeout)
    except TimeoutError:
        process.kill()
        raise
    match = _READY.match(line.strip())
    if not match:
        process.kill()
        process.wait()
        log_tail = pathlib.Path(log_path).read_text(errors="replace")[-4000:]
        raise RuntimeError(f"bertpipe serve did not start (exit {process.returncode}): "
                           f"{line!r}\n{log_tail}")
    grpc_port = match.group("grpc")
    return ServerProcess(process, pathlib.Path(log_path), match.group("name"),
                         f"http://{match.group('host')}:{match.group('rest')}",
                         f"{match.group('host')}:{grpc_port}" if grpc_port else None)


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    import selectors  # pylint: disable=import-outside-toplevel
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"bertpipe serve printed nothing in {timeout:g} s")
    return process.stdout.readline()
