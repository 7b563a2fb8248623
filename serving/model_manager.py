"""The versions of one model that the local server serves, reloaded as new versions are pushed.

It watches a TF Serving model base path (`<serving_root>/<model_name>`, what ServingPusher
writes, with all-digit version directories) like `tensorflow_model_server
--file_system_poll_wait_seconds`: every poll it lists the versions, loads the newest
`num_versions` (TF Serving's `latest` version policy; its default is 1) and unloads the others.

- A new version is loaded and warmed up beside the old ones, then swapped in under a lock: a
  request gets either the old or the new version, never a half-loaded one.
- An unloaded version finishes the requests already queued for it (its batch threads drain the
  queue) before its threads stop.
- A version that fails to load is reported in the status (state END with the error); the
  versions already loaded stay in service, as TF Serving's availability-preserving policy does.
  It is tried again as soon as its directory changes (a version seen half-copied by `cp -r`,
  TFX's stock Pusher or an object-store push, which write in place, loads once the copy is
  complete), and otherwise every `load_retry_seconds`, at most `max_load_retries` times (TF
  Serving's --max_num_load_retries and --load_retry_interval_micros, defaults 5 and 60 s).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2
from tensorflow_serving.apis import status_pb2

from serving.batcher import BatchingOptions, BatchScheduler
from serving.contract import version_numbers
from serving.errors import InvalidArgument, NotFound, Unavailable
from serving.servable import Servable

_LOG = logging.getLogger(__name__)
_State = get_model_status_pb2.ModelVersionStatus.State
_UNKNOWN_ERROR = 2  # tensorflow.error.Code.UNKNOWN, as TF Serving reports a failed load


@dataclasses.dataclass(frozen=True)
class _Failure:
    """A failed load: the version directory as it was (file names, sizes, times), how many
    loads failed, and when the last one did."""

    directory: Tuple[Tuple[str, int, int], ...]
    attempts: int
    at: float


def directory_state(path: str) -> Tuple[Tuple[str, int, int], ...]:
    """(relative path, size, mtime in ns) of every file under `path`: what changes while a
    version is being copied into place."""
    state = []
    for directory, _, files in os.walk(path):
        for name in files:
            full = os.path.join(directory, name)
            try:
                info = os.stat(full)
            except OSError:  # removed meanwhile: the next poll sees the change
                continue
            state.append((os.path.relpath(full, path), info.st_size, info.st_mtime_ns))
    return tuple(sorted(state))


class _Loaded:
    """A servable and the batch scheduler in front of it."""

    def __init__(self, servable: Servable, batching: BatchingOptions,
                 on_batch: Optional[Callable[[int], None]]):
        self.servable = servable
        self.scheduler = BatchScheduler(servable.run, batching,
                                        name=f"{servable.name}-{servable.version}",
                                        on_batch=on_batch)


class ModelManager:
    """Loads, serves and unloads the versions of the model at `base_path`."""

    def __init__(self, name: str, base_path: str, batching: BatchingOptions,
                 num_versions: int = 1, poll_seconds: float = 1.0,
                 load: Callable[[str, int, str], Servable] = Servable,
                 on_batch: Optional[Callable[[int], None]] = None,
                 on_load: Optional[Callable[[int, bool], None]] = None,
                 load_retry_seconds: float = 60.0, max_load_retries: int = 5):
        if num_versions < 1:
            raise ValueError(f"num_versions must be >= 1, not {num_versions}")
        self.name, self.base_path = name, os.path.abspath(base_path)
        self._batching, self._num_versions = batching, num_versions
        self._poll_seconds, self._load, self._on_batch = poll_seconds, load, on_batch
        self._on_load = on_load or (lambda version, loaded: None)  # (version, succeeded)
        self._load_retry_seconds, self._max_load_retries = load_retry_seconds, max_load_retries
        self._failures: Dict[int, _Failure] = {}  # versions whose last load failed
        self._lock = threading.Lock()
        self._loaded: Dict[int, _Loaded] = {}  # replaced as a whole, never changed in place
        # Every version seen: (state, error message), for the status API.
        self._states: Dict[int, Tuple[int, str]] = {}
        self._stop = threading.Event()
        self._poller: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ loading and unloading

    def start(self) -> None:
        """Loads the current versions now, then polls for new ones in the background."""
        self.poll()
        self._poller = threading.Thread(target=self._poll_loop, daemon=True,
                                        name=f"poll-{self.name}")
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller:
            self._poller.join()
        with self._lock:
            loaded, self._loaded = self._loaded, {}
        for entry in loaded.values():
            entry.scheduler.close()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll()
            except Exception:  # pylint: disable=broad-except  (keep serving what is loaded)
                _LOG.exception("polling %s failed", self.base_path)

    def _may_load(self, version: int) -> bool:
        """Not failed, or failed but worth another try: its directory changed since, or the
        retry interval passed and retries remain."""
        failure = self._failures.get(version)
        if failure is None or version in self._loaded:
            return True
        if directory_state(os.path.join(self.base_path, str(version))) != failure.directory:
            return True
        return (failure.attempts <= self._max_load_retries
                and time.monotonic() - failure.at >= self._load_retry_seconds)

    def _wanted_versions(self) -> List[int]:
        candidates = [version for version in version_numbers(self.base_path)
                      if self._may_load(version)]
        return candidates[-self._num_versions:]

    def poll(self) -> None:
        """One poll: load the wanted versions that are not loaded, then unload the others."""
        wanted = self._wanted_versions()
        for version in wanted:
            if version not in self._loaded:
                self._load_version(version)
        # A version that failed to load is not wanted: the next poll keeps the old one serving.
        wanted = set(self._wanted_versions())
        with self._lock:
            unloading = {version: entry for version, entry in self._loaded.items()
                         if version not in wanted}
            if not unloading:
                return
            self._loaded = {version: entry for version, entry in self._loaded.items()
                            if version in wanted}
            for version in unloading:
                self._states[version] = (_State.UNLOADING, "")
        for version, entry in unloading.items():
            entry.scheduler.close()  # waits for the requests already queued on it
            getattr(entry.servable, "close", lambda: None)()
            with self._lock:
                self._states[version] = (_State.END, "")
            _LOG.info("unloaded %s version %d", self.name, version)

    def _load_version(self, version: int) -> None:
        path = os.path.join(self.base_path, str(version))
        with self._lock:
            self._states[version] = (_State.LOADING, "")
        _LOG.info("loading %s version %d from %s", self.name, version, path)
        directory = directory_state(path)  # before loading: a change during the load counts
        try:
            entry = _Loaded(self._load(self.name, version, path), self._batching,
                            self._on_batch)
        except Exception as error:  # pylint: disable=broad-except  (reported in the status)
            previous = self._failures.get(version)
            attempts = (previous.attempts + 1
                        if previous and previous.directory == directory else 1)
            _LOG.error("cannot load %s version %d (attempt %d): %s", self.name, version,
                       attempts, error)
            with self._lock:
                self._failures[version] = _Failure(directory, attempts, time.monotonic())
                self._states[version] = (_State.END, str(error))
            self._on_load(version, False)
            return
        with self._lock:
            self._failures.pop(version, None)
            self._loaded = {**self._loaded, version: entry}
            self._states[version] = (_State.AVAILABLE, "")
        self._on_load(version, True)
        _LOG.info("serving %s version %d", self.name, version)

    # ------------------------------------------------------------------ requests

    def loaded_versions(self) -> List[int]:
        return sorted(self._loaded)

    def _entry(self, name: str, version: Optional[int]) -> _Loaded:
        """The loaded version asked for (None: the latest); NotFound as TF Serving words it."""
        loaded = self._loaded
        if name != self.name:
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise NotFound(f"Servable not found for request: {request}")
        if version is None:
            if not loaded:
                raise Unavailable(f"no version of model {name} is loaded yet (see GET "
                                  f"/v1/models/{name} for the versions and their errors)")
            return loaded[max(loaded)]
        if version not in loaded:
            raise NotFound(f"Servable not found for request: Specific({name}, {version}); "
                           f"loaded versions: {sorted(loaded)}")
        return loaded[version]

    def servable(self, name: str, version: Optional[int] = None) -> Servable:
        return self._entry(name, version).servable

    def submit(self, name: str, version: Optional[int], texts: Sequence[bytes]
               ) -> Tuple[int, Future]:
        """(version used, Future of its outputs for `texts`). Raises ServingError."""
        # Under the lock, so that the version cannot be unloaded between lookup and enqueue.
        with self._lock:
            entry = self._entry(name, version)
            return entry.servable.version, entry.scheduler.submit(texts)

    def batch_size_counts(self) -> Dict[int, int]:
        """Model calls per batch size over the loaded versions (for tests and benchmarks)."""
        counts: Dict[int, int] = {}
        for entry in self._loaded.values():
            for size, count in entry.scheduler.batch_size_counts.items():
                counts[size] = counts.get(size, 0) + count
        return counts

    # ------------------------------------------------------------------ status and metadata

    def status(self, name: str, version: Optional[int] = None
               ) -> get_model_status_pb2.GetModelStatusResponse:
        """TF Serving's GetModelStatusResponse (get_model_status_impl.cc wording for errors)."""
        with self._lock:
            states = dict(self._states) if name == self.name else {}
        if version is not None:
            if version not in states:
                raise NotFound(f"Could not find version {version} of model {name}")
            states = {version: states[version]}
        elif not states:
            raise NotFound(f"Could not find any versions of model {name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, (state, error) in sorted(states.items()):
            response.model_version_status.add(
                version=number, state=state,
                status=status_pb2.StatusProto(error_code=_UNKNOWN_ERROR if error else 0,
                                              error_message=error))
        return response

    def metadata(self, name: str, version: Optional[int] = None
                 ) -> Tuple[Servable, get_model_metadata_pb2.SignatureDefMap]:
        servable = self.servable(name, version)
        return servable, servable.signature_defs


def parse_version(text: Optional[str]) -> Optional[int]:
    """A version from a request path or field: None when absent; InvalidArgument if not a number."""
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"Failed to convert version: {text} to numeric.") from None
