"""Request batching: concurrent requests to one model version become one model call.

It follows TF Serving's batching (tensorflow/core/kernels/batching_util/basic_batch_scheduler.h)
and takes the same settings, from the same `BatchingParameters` text file that
`tensorflow_model_server --batching_parameters_file` reads (serving/deploy/
batching_parameters.txt):

- `max_batch_size`: rows per model call. A request with more rows is split into several tasks
  (TF Serving's enable_large_batch_splitting), and its answer is put back together in order.
- `batch_timeout_micros`: how long the first waiting request waits for others to fill the batch.
- `max_enqueued_batches`: queue bound, counted in rows as max_enqueued_batches x max_batch_size;
  past it a request fails at once with QueueFullError (TF Serving: UNAVAILABLE, HTTP 503),
  instead of waiting ever longer.
- `num_batch_threads`: model calls that may run at the same time.
- `allowed_batch_sizes`: when set, a batch is padded with empty texts up to the next allowed
  size, as TF Serving does; the padding rows' outputs are dropped.

One thing TF Serving's scheduler does not do: when more rows wait than one batch holds, a batch
takes the oldest task (so none waits forever) and then the waiting tasks whose texts are closest
to its length, instead of strict arrival order, so each model call pads its texts less (the
encoder's cost grows with the longest text of the batch, or of each length group inside the
exported model). With the queue shorter than a batch nothing changes: everything waiting goes.

A field left out of the file takes basic_batch_scheduler.h's default (max_batch_size 1000,
batch_timeout_micros 0, max_enqueued_batches 10, num_batch_threads = number of CPUs).
"""
from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from concurrent.futures import Future, InvalidStateError
from typing import Callable, Counter, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from serving.errors import Unavailable
from serving.tf_serving_protos import BatchingParameters, parse_text_file

Outputs = Dict[str, np.ndarray]


class QueueFullError(Unavailable):
    """The batching queue holds its maximum number of rows; the client should retry later."""


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    allowed_batch_sizes: Tuple[int, ...] = ()
    thread_pool_name: str = "batch_threads"

    def __post_init__(self):
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"batching parameter {name} must be >= 1, not "
                                 f"{getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError("batching parameter batch_timeout_micros must be >= 0")
        sizes = list(self.allowed_batch_sizes)
        # TF Serving's rule (session_bundle_config.proto): increasing, last = max_batch_size.
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError(f"allowed_batch_sizes {sizes} must increase and end with "
                             f"max_batch_size {self.max_batch_size}")

    @classmethod
    def from_proto(cls, parameters) -> "BatchingOptions":
        wrapped = {name: getattr(parameters, name).value
                   for name in ("max_batch_size", "batch_timeout_micros",
                                "max_enqueued_batches", "num_batch_threads", "thread_pool_name")
                   if parameters.HasField(name)}
        return cls(**wrapped, allowed_batch_sizes=tuple(parameters.allowed_batch_sizes))

    @classmethod
    def from_file(cls, path: str) -> "BatchingOptions":
        """The options of a TF Serving batching parameters file (text BatchingParameters)."""
        parameters = parse_text_file(path, BatchingParameters)  # its errors name the file
        try:
            return cls.from_proto(parameters)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error


@dataclasses.dataclass
class _Task:
    texts: Sequence[bytes]
    future: Future
    enqueued: float

    @property
    def length(self) -> int:
        """Bytes of its longest text: the proxy for token count that batching groups by."""
        return max((len(text) for text in self.texts), default=0)


def pick_batch(queue: Sequence[_Task], max_rows: int) -> List[int]:
    """Indices (in queue order) of the tasks of the next batch: the oldest task, then the
    others closest to its length while the rows fit; all of them if they fit."""
    if sum(len(task.texts) for task in queue) <= max_rows:
        return list(range(len(queue)))
    chosen, rows = [0], len(queue[0].texts)
    target = queue[0].length
    for index in sorted(range(1, len(queue)), key=lambda i: (abs(queue[i].length - target), i)):
        if rows + len(queue[index].texts) <= max_rows:
            chosen.append(index)
            rows += len(queue[index].texts)
    return sorted(chosen)


def concatenate(parts: Sequence[Outputs]) -> Outputs:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


class BatchScheduler:
    """Runs `run_batch(texts) -> {output: array with one row per text}` on batches of tasks."""

    def __init__(self, run_batch: Callable[[List[bytes]], Outputs], options: BatchingOptions,
                 name: str = "model", on_batch: Optional[Callable[[int], None]] = None):
        self._run_batch, self.options, self._on_batch = run_batch, options, on_batch
        self._queue: Deque[_Task] = collections.deque()
        self._queued_rows = 0
        self._condition = threading.Condition()
        self._closed = False
        # How many model calls had each batch size (rows): tests and benchmarks read it.
        self.batch_size_counts: Counter = collections.Counter()
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"{options.thread_pool_name}-{name}-{index}")
                         for index in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    @property
    def queue_capacity_rows(self) -> int:
        return self.options.max_enqueued_batches * self.options.max_batch_size

    def submit(self, texts: Sequence[bytes]) -> Future:
        """A Future of the outputs for `texts`, rows in order. Raises QueueFullError."""
        if not texts:
            raise ValueError("nothing to predict: no texts")
        size = self.options.max_batch_size
        chunks = [texts[start:start + size] for start in range(0, len(texts), size)]
        with self._condition:
            if self._closed:
                raise Unavailable("this model version has been unloaded; send the request again")
            if self._queued_rows + len(texts) > self.queue_capacity_rows:
                raise QueueFullError(
                    f"The batch scheduling queue is full: {self._queued_rows} texts are waiting "
                    f"and this request has {len(texts)}, the limit is "
                    f"{self.queue_capacity_rows} (max_enqueued_batches "
                    f"{self.options.max_enqueued_batches} x max_batch_size {size}); retry later")
            now = time.monotonic()
            futures = []
            for chunk in chunks:
                self._queue.append(_Task(chunk, Future(), now))
                futures.append(self._queue[-1].future)
            self._queued_rows += len(texts)
            self._condition.notify_all()
        return futures[0] if len(futures) == 1 else _gather(futures)

    def close(self) -> None:
        """Finishes the queued tasks, then stops the batch threads."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()

    def _next_batch(self) -> Optional[List[_Task]]:
        """Waits for a batch: full, or its oldest task waited batch_timeout_micros."""
        timeout = self.options.batch_timeout_micros / 1e6
        with self._condition:
            while True:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if not self._queue:
                    return None  # closed and drained
                deadline = self._queue[0].enqueued + timeout
                remaining = deadline - time.monotonic()
                if (self._queued_rows >= self.options.max_batch_size or remaining <= 0
                        or self._closed):
                    break
                # Woken early by a new task or another thread taking this batch: look again.
                self._condition.wait(remaining)
            chosen = set(pick_batch(self._queue, self.options.max_batch_size))
            batch = [task for index, task in enumerate(self._queue) if index in chosen]
            self._queue = collections.deque(
                task for index, task in enumerate(self._queue) if index not in chosen)
            self._queued_rows -= sum(len(task.texts) for task in batch)
            return batch

    def _padded(self, texts: List[bytes]) -> List[bytes]:
        target = next((size for size in self.options.allowed_batch_sizes
                       if size >= len(texts)), len(texts))
        return texts + [b""] * (target - len(texts))

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            # A caller that gave up (asyncio cancels the future it waited on) gets no model time.
            batch = [task for task in batch if task.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                self._answer(batch)
            except Exception as error:  # pylint: disable=broad-except  (handed to each caller)
                # The model call, or handling its outputs (wrong shapes, a failing metrics
                # callback): every caller still waiting hears of it now, and this thread goes
                # on serving the next batches.
                for task in batch:
                    if not task.future.done():
                        try:
                            task.future.set_exception(error)
                        except InvalidStateError:  # resolved meanwhile
                            pass

    def _answer(self, batch: List[_Task]) -> None:
        """Runs the model on the batch's texts and gives each task its rows."""
        texts = [text for task in batch for text in task.texts]
        outputs = self._run_batch(self._padded(texts))
        rows = {name: len(values) for name, values in outputs.items()}
        if any(count < len(texts) for count in rows.values()):
            raise ValueError(f"the model returned {rows} rows for a batch of {len(texts)} texts")
        with self._condition:
            self.batch_size_counts[len(texts)] += 1
        if self._on_batch:
            self._on_batch(len(texts))
        start = 0
        for task in batch:
            end = start + len(task.texts)
            task.future.set_result({name: values[start:end] for name, values in outputs.items()})
            start = end


def _gather(futures: List[Future]) -> Future:
    """One Future of the row-wise concatenation of `futures`' results, in order."""
    combined: Future = Future()
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_):
        with lock:
            remaining[0] -= 1
            if remaining[0]:
                return
        errors = [future.exception() for future in futures if future.exception()]
        try:
            if errors:
                combined.set_exception(errors[0])
            else:
                combined.set_result(concatenate([future.result() for future in futures]))
        except InvalidStateError:  # the caller cancelled `combined` meanwhile
            pass

    for future in futures:
        future.add_done_callback(one_done)
    return combined
