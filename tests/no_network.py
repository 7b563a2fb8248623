"""`bertpipe` as a user runs it, in a subprocess that cannot reach any network.

A sitecustomize.py on the subprocess's PYTHONPATH installs an audit hook that fails any socket
connection or name lookup, and the environment holds no Google credentials: a command that
tried to reach Google (credentials, the metadata server, an API, GCS) would fail. This stands
in for a CI machine with no cloud access; it is not a cloud.
"""
import os
import subprocess
import sys
import textwrap

NO_NETWORK = textwrap.dedent("""\
    import sys

    def _refuse_network(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                     "socket.sendto", "urllib.Request"):
            raise RuntimeError(f"network access in a dry run: {event} {args!r}")

    sys.addaudithook(_refuse_network)
    """)


def bertpipe(tmp_path, *argv) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    home = tmp_path / "home"  # no ~/.config/gcloud credentials
    home.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3", HOME=str(home))
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "bertpipe"), *argv],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
