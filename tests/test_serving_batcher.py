"""Request batching (serving/batcher.py): concurrent tasks share model calls, bounded and in order.

`run_batch` here is a plain function of the texts (their lengths and the texts themselves), so
each caller's rows can be checked against its own texts; it records the size of every call.
"""
import threading
import time

import numpy as np
import pytest

from serving.batcher import BatchingOptions, BatchScheduler, QueueFullError


class RecordingModel:
    """Outputs one row per text; remembers the texts of each call; can be held on a gate."""

    def __init__(self, seconds_per_call=0.0):
        self.calls, self.seconds_per_call = [], seconds_per_call
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, texts):
        self.entered.set()
        self.gate.wait()
        with self._lock:
            self.calls.append(list(texts))
        time.sleep(self.seconds_per_call)
        return {"length": np.array([len(text) for text in texts]),
                "echo": np.array(texts, dtype=object)}


def options(**overrides):
    settings = dict(max_batch_size=8, batch_timeout_micros=50_000, max_enqueued_batches=10,
                    num_batch_threads=1)
    settings.update(overrides)
    return BatchingOptions(**settings)


def test_concurrent_requests_are_coalesced_into_bounded_batches():
    model = RecordingModel(seconds_per_call=0.02)
    scheduler = BatchScheduler(model, options())
    texts = [f"text {index}".encode() * (index + 1) for index in range(20)]
    results = [None] * len(texts)

    def call(index):
        results[index] = scheduler.submit([texts[index]]).result(timeout=30)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    scheduler.close()

    sizes = [len(call) for call in model.calls]
    assert sum(sizes) == 20 and max(sizes) <= 8
    assert len(sizes) < 20  # at least one model call served several requests
    assert sum(scheduler.batch_size_counts.values()) == len(sizes)
    for text, result in zip(texts, results):  # every caller got its own row
        assert result["echo"].tolist() == [text]
        assert result["length"].tolist() == [len(text)]


def test_a_request_larger_than_max_batch_size_is_split_and_answered_in_order():
    model = RecordingModel()
    scheduler = BatchScheduler(model, options(batch_timeout_micros=0))
    texts = [str(index).encode() for index in range(21)]
    result = scheduler.submit(texts).result(timeout=30)
    scheduler.close()
    assert [len(call) for call in model.calls] == [8, 8, 5]
    assert result["echo"].tolist() == texts


def test_full_queue_rejects_at_once_instead_of_waiting():
    model = RecordingModel()
    model.gate.clear()  # the batch thread blocks inside its first call
    scheduler = BatchScheduler(model, options(max_batch_size=2, max_enqueued_batches=2,
                                              batch_timeout_micros=0))
    first = scheduler.submit([b"a", b"b"])
    assert model.entered.wait(10)
    queued = scheduler.submit([b"c", b"d", b"e", b"f"])  # 4 rows = the 2 x 2 capacity
    with pytest.raises(QueueFullError, match="queue is full: 4 texts are waiting"):
        scheduler.submit([b"g"])
    model.gate.set()
    assert first.result(timeout=30)["echo"].tolist() == [b"a", b"b"]
    assert queued.result(timeout=30)["echo"].tolist() == [b"c", b"d", b"e", b"f"]
    assert scheduler.submit([b"g"]).result(timeout=30)["echo"].tolist() == [b"g"]
    scheduler.close()


def test_allowed_batch_sizes_pad_the_call_and_drop_the_padding_rows():
    model = RecordingModel()
    scheduler = BatchScheduler(model, options(allowed_batch_sizes=(4, 8),
                                              batch_timeout_micros=0))
    result = scheduler.submit([b"x", b"yy", b"zzz"]).result(timeout=30)
    scheduler.close()
    assert model.calls == [[b"x", b"yy", b"zzz", b""]]
    assert result["length"].tolist() == [1, 2, 3]


def test_model_errors_reach_every_caller_of_the_batch():
    def broken(texts):
        raise RuntimeError(f"model failed on {len(texts)} texts")

    scheduler = BatchScheduler(broken, options(batch_timeout_micros=100_000))
    futures = [scheduler.submit([b"a"]), scheduler.submit([b"b"])]
    for future in futures:
        with pytest.raises(RuntimeError, match="model failed on 2 texts"):
            future.result(timeout=30)
    scheduler.close()


@pytest.mark.parametrize("fault", ["callback", "outputs"])
def test_a_fault_after_the_model_call_reaches_the_callers_and_the_thread_goes_on(fault):
    """Handling a batch's results can fail too (a metrics callback, outputs with too few
    rows): its callers get the error at once, and the next requests are still served."""
    model = RecordingModel()
    failures = [1]

    def run_batch(texts):
        outputs = model(texts)
        if fault == "outputs" and failures[0]:
            failures[0] -= 1
            return {name: values[:1] for name, values in outputs.items()}
        return outputs

    def on_batch(size):
        if fault == "callback" and failures[0]:
            failures[0] -= 1
            raise RuntimeError("metrics callback failed")

    scheduler = BatchScheduler(run_batch, options(batch_timeout_micros=100_000),
                               on_batch=on_batch)
    futures = [scheduler.submit([b"a"]), scheduler.submit([b"bb"])]
    expected = "metrics callback failed" if fault == "callback" else \
        r"the model returned \{'length': 1, 'echo': 1\} rows for a batch of 2 texts"
    started = time.monotonic()
    for future in futures:
        with pytest.raises((RuntimeError, ValueError), match=expected):
            future.result(timeout=30)
    assert time.monotonic() - started < 5  # at once, not at the callers' own timeout
    # The one batch thread survived: a later request is answered.
    assert list(scheduler.submit([b"ccc"]).result(timeout=30)["length"]) == [3]
    scheduler.close()


def test_close_finishes_queued_requests_then_refuses_new_ones():
    model = RecordingModel()
    model.gate.clear()
    scheduler = BatchScheduler(model, options(batch_timeout_micros=0))
    running = scheduler.submit([b"a"])
    assert model.entered.wait(10)
    queued = scheduler.submit([b"b"])
    closer = threading.Thread(target=scheduler.close)
    closer.start()
    model.gate.set()
    closer.join(timeout=30)
    assert not closer.is_alive()
    assert running.result(timeout=1)["echo"].tolist() == [b"a"]
    assert queued.result(timeout=1)["echo"].tolist() == [b"b"]
    with pytest.raises(Exception, match="unloaded"):
        scheduler.submit([b"c"])


def test_batching_parameters_file_is_read_with_tf_servings_message(tmp_path):
    path = tmp_path / "batching_parameters.txt"
    path.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 300 }\n"
                    "allowed_batch_sizes: 8\nallowed_batch_sizes: 16\n")
    parsed = BatchingOptions.from_file(str(path))
    assert (parsed.max_batch_size, parsed.batch_timeout_micros, parsed.allowed_batch_sizes) == (
        16, 300, (8, 16))
    assert parsed.max_enqueued_batches == 10  # basic_batch_scheduler.h's default

    path.write_text("max_batch_size { value: 16 }\nallowed_batch_sizes: 8\n")
    with pytest.raises(ValueError, match=r"batching_parameters.txt: allowed_batch_sizes \[8\] "
                                         "must increase and end with max_batch_size 16"):
        BatchingOptions.from_file(str(path))
    path.write_text("max_batch_size: 16\n")  # a wrapper message, not a plain number
    with pytest.raises(ValueError, match="is not a tensorflow.serving.BatchingParameters"):
        BatchingOptions.from_file(str(path))


def _task(*texts):
    from concurrent.futures import Future
    from serving.batcher import _Task
    return _Task(list(texts), Future(), 0.0)


def test_a_queue_that_fits_one_batch_goes_whole_and_in_order():
    from serving.batcher import pick_batch
    queue = [_task(b"x" * 50), _task(b"y"), _task(b"z" * 10, b"w")]
    assert pick_batch(queue, 8) == [0, 1, 2]


def test_a_long_queue_batches_the_oldest_with_the_texts_closest_to_its_length():
    from serving.batcher import pick_batch
    lengths = [40, 5, 41, 200, 6, 39, 38, 120, 7, 42]
    queue = [_task(b"a" * length) for length in lengths]
    chosen = pick_batch(queue, 4)
    assert chosen[0] == 0  # the oldest task always goes: no task waits forever
    # Ties in distance go to the older task: 38 (index 6) before 42 (index 9).
    assert sorted(lengths[index] for index in chosen) == [38, 39, 40, 41]
    # Tasks of several texts count all their rows and are grouped by their longest text.
    queue = [_task(b"a" * 30), _task(b"b" * 3, b"c" * 31), _task(b"d" * 300), _task(b"e" * 29)]
    assert pick_batch(queue, 3) == [0, 1]


def test_length_grouping_keeps_each_callers_rows_under_a_backlog():
    model = RecordingModel()
    model.gate.clear()  # hold the first call so that a backlog builds up
    scheduler = BatchScheduler(model, options(max_batch_size=4, batch_timeout_micros=0))
    first = scheduler.submit([b"first"])
    assert model.entered.wait(5)
    texts = [bytes([97 + index % 26]) * length
             for index, length in enumerate([3, 90, 4, 91, 5, 92, 6, 93, 7, 94, 8, 95, 9, 96, 10, 97])]
    futures = [scheduler.submit([text]) for text in texts]
    model.gate.set()
    assert list(first.result(5)["echo"]) == [b"first"]
    for text, future in zip(texts, futures):
        assert list(future.result(5)["echo"]) == [text]
    scheduler.close()
    backlog_calls = model.calls[1:]
    # Short and long texts were not mixed: each call's lengths span less than the backlog's.
    assert all(max(map(len, call)) - min(map(len, call)) < 80 for call in backlog_calls)


def test_thread_counts_split_the_cores_between_concurrent_model_calls():
    from serving.server_options import thread_counts
    assert thread_counts(2, 2) == (1, 2)
    assert thread_counts(8, 2) == (4, 2)
    assert thread_counts(2, 4) == (1, 4)
    assert thread_counts(2, 2, intra=2, inter=1) == (2, 1)
