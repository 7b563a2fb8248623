"""Local server load test: p50/p99 latency and throughput for batch 1 and batch 32, on loopback.

Starts `bertpipe serve` (a child process, ports on 127.0.0.1) on a pushed model root (default:
the MiniLM demo model that `make demo` pushes to runs/serving/text_classifier) and sends it a
fixed number of predict requests of real SST-2 dev sentences (read at run time), from several
client threads, each request bounded by a time limit per mode. The baseline, in the same script,
is the model's serving signature called directly in this process (one caller, no server), so
"x direct" is what the server costs or gains: HTTP and JSON on one side, request batching across
clients on the other. Modes are interleaved round by round; figures are medians over rounds.
Writes the section "Serving: local server load test" of docs/BENCHMARKS.md.

  python bench/serving_load.py [--model-root DIR] [--rounds 3]
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from benchmarks_md import write_section  # noqa: E402

SECTION = "Serving: local server load test"
DEFAULT_MODEL_ROOT = REPO / "runs" / "serving" / "text_classifier"
DEFAULT_SENTENCES = REPO.parent / "shared" / "data" / "sst2" / "dev.tsv"


@dataclasses.dataclass
class LoadResult:
    batch_size: int
    requested: int
    latencies: List[float]  # seconds, of the requests that succeeded
    errors: List[str]
    seconds: float  # wall time of the whole mode
    texts_per_model_call: Optional[float] = None  # from the server's metrics

    @property
    def completed(self) -> int:
        return len(self.latencies)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    @property
    def sentences_per_second(self) -> float:
        return self.completed * self.batch_size / self.seconds if self.seconds else 0.0


def read_sentences(path: pathlib.Path, column: str = "sentence") -> List[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle, delimiter="\t",
                                                      quoting=csv.QUOTE_NONE)]


def request_texts(sentences: Sequence[str], index: int, batch_size: int) -> List[str]:
    """The texts of request `index`: the next `batch_size` sentences, wrapping around."""
    start = index * batch_size
    return [sentences[(start + offset) % len(sentences)] for offset in range(batch_size)]


def run_load(call: Callable[[object, List[str]], object], make_client: Callable[[], object],
             sentences: Sequence[str], batch_size: int, requests: int, concurrency: int,
             time_limit: float) -> LoadResult:
    """`requests` calls of `call(client, texts)` from `concurrency` threads (a client each);
    no new request starts after `time_limit` seconds."""
    next_index, lock = [0], threading.Lock()
    latencies: List[float] = []
    errors: List[str] = []
    started = time.monotonic()

    def worker():
        client = make_client()
        while True:
            with lock:
                index = next_index[0]
                if index >= requests or time.monotonic() - started > time_limit:
                    return
                next_index[0] += 1
            texts = request_texts(sentences, index, batch_size)
            sent = time.monotonic()
            try:
                call(client, texts)
            except Exception as error:  # pylint: disable=broad-except  (counted, reported)
                with lock:
                    errors.append(str(error))
                continue
            with lock:
                latencies.append(time.monotonic() - sent)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(batch_size, requests, latencies, errors, time.monotonic() - started)


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    batch_size: int
    requests: int
    concurrency: int
    kind: str  # direct, rest, grpc


def modes(batch1_requests: int, batch32_requests: int) -> List[Mode]:
    return [
        Mode("direct (signature call in-process)", 1, batch1_requests, 1, "direct"),
        Mode("server REST, 1 client", 1, batch1_requests, 1, "rest"),
        Mode("server REST, 8 clients", 1, batch1_requests, 8, "rest"),
        Mode("server gRPC, 8 clients", 1, batch1_requests, 8, "grpc"),
        Mode("direct (signature call in-process)", 32, batch32_requests, 1, "direct"),
        Mode("server REST, 1 client", 32, batch32_requests, 1, "rest"),
        Mode("server REST, 4 clients", 32, batch32_requests, 4, "rest"),
    ]


def batch_totals(server) -> Tuple[float, float]:
    """(texts, model calls) so far, from the server's Prometheus batch size histogram."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    from serving.metrics import BATCH_SIZE_METRIC, prometheus_path
    from serving.server_options import DEFAULT_MONITORING_CONFIG_FILE
    path = prometheus_path(DEFAULT_MONITORING_CONFIG_FILE)  # the server's default
    page = requests.get(f"{server.rest_url}{path}", timeout=30).text
    values = {sample.name: sample.value for family in text_string_to_metric_families(page)
              for sample in family.samples if sample.name.startswith(BATCH_SIZE_METRIC)}
    return values[f"{BATCH_SIZE_METRIC}_sum"], values[f"{BATCH_SIZE_METRIC}_count"]


def measure(mode: Mode, servable, server, sentences, time_limit: float) -> LoadResult:
    from serving.client import GrpcClient, RestClient
    if mode.kind == "direct":
        result = run_load(lambda model, texts: model.run([text.encode() for text in texts]),
                          lambda: servable, sentences, mode.batch_size, mode.requests,
                          mode.concurrency, time_limit)
        result.texts_per_model_call = float(mode.batch_size)
        return result
    if mode.kind == "rest":
        make = lambda: RestClient(server.rest_url, server.model_name)  # noqa: E731
    else:
        make = lambda: GrpcClient(server.grpc_target, server.model_name)  # noqa: E731
    texts_before, calls_before = batch_totals(server)
    result = run_load(lambda client, texts: client.predict(texts), make, sentences,
                      mode.batch_size, mode.requests, mode.concurrency, time_limit)
    texts_after, calls_after = batch_totals(server)
    result.texts_per_model_call = (texts_after - texts_before) / max(calls_after - calls_before,
                                                                     1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-root", default=str(DEFAULT_MODEL_ROOT),
                        help="<serving_root>/<model_name> (default: the demo model, after "
                             "`make demo`)")
    parser.add_argument("--sentences", default=str(DEFAULT_SENTENCES),
                        help="TSV with a 'sentence' column (default: SST-2 dev.tsv)")
    parser.add_argument("--batch1-requests", type=int, default=200)
    parser.add_argument("--batch32-requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="seconds per mode and round; no request starts after it")
    parser.add_argument("--batching-parameters-file", default="",
                        help="the server's BatchingParameters (default: the TF Serving "
                             "deployment's, serving/deploy/batching_parameters.txt)")
    parser.add_argument("--no-write", action="store_true",
                        help="print the table instead of writing docs/BENCHMARKS.md")
    args = parser.parse_args()

    model_root = pathlib.Path(args.model_root)
    if not model_root.is_dir():
        sys.exit(f"error: {model_root} does not exist: run `make demo` first, or pass "
                 "--model-root <serving_root>/<model_name>")
    sentences = read_sentences(pathlib.Path(args.sentences))

    from serving.contract import version_numbers
    from serving import server_process
    from serving.batcher import BatchingOptions
    from serving.servable import Servable
    from serving.server_options import DEFAULT_BATCHING_PARAMETERS_FILE

    version = max(version_numbers(str(model_root)))
    servable = Servable(model_root.name, version, str(model_root / str(version)))
    batching_file = args.batching_parameters_file or DEFAULT_BATCHING_PARAMETERS_FILE
    batching = BatchingOptions.from_file(batching_file)
    all_modes = modes(args.batch1_requests, args.batch32_requests)
    results: Dict[Mode, List[LoadResult]] = {mode: [] for mode in all_modes}
    shown_root = (model_root.resolve().relative_to(REPO)
                  if model_root.resolve().is_relative_to(REPO) else model_root)
    with tempfile.TemporaryDirectory() as work:
        server = server_process.start(str(model_root), pathlib.Path(work) / "server.log",
                                      ["--batching-parameters-file", str(batching_file)])
        try:
            warm = all_modes[1]  # one request of each size through the server before timing
            for size in (1, 32):
                measure(dataclasses.replace(warm, batch_size=size, requests=2), servable,
                        server, sentences, args.time_limit)
            for round_index in range(args.rounds):
                for mode in all_modes:
                    result = measure(mode, servable, server, sentences, args.time_limit)
                    results[mode].append(result)
                    print(f"round {round_index + 1} batch {mode.batch_size:>2} {mode.name:<36} "
                          f"{result.completed}/{mode.requests} ok, p50 "
                          f"{result.percentile_ms(50):7.1f} ms, p99 "
                          f"{result.percentile_ms(99):7.1f} ms, "
                          f"{result.sentences_per_second:7.1f} sentences/s, "
                          f"{result.texts_per_model_call:5.1f} texts per model call"
                          + (f", {len(result.errors)} errors: {result.errors[0]}"
                             if result.errors else ""), flush=True)
        finally:
            server.stop()

    def median(values):
        return statistics.median(values)

    rows = ["| batch | mode | requests (ok) | p50 ms | p99 ms | sentences/s | × direct "
            "(median, min–max per round) | texts per model call |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for mode in all_modes:
        runs = results[mode]
        direct = results[next(m for m in all_modes
                              if m.kind == "direct" and m.batch_size == mode.batch_size)]
        ratios = [run.sentences_per_second / base.sentences_per_second
                  for run, base in zip(runs, direct)]
        ratio = ("1.00" if mode.kind == "direct" else
                 f"{median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")
        rows.append(f"| {mode.batch_size} | {mode.name} | {mode.requests} "
                    f"({min(run.completed for run in runs)}) | "
                    f"{median([run.percentile_ms(50) for run in runs]):.1f} | "
                    f"{median([run.percentile_ms(99) for run in runs]):.1f} | "
                    f"{median([run.sentences_per_second for run in runs]):.1f} | {ratio} | "
                    f"{median([run.texts_per_model_call for run in runs]):.1f} |")
    errors = sum(len(run.errors) for runs in results.values() for run in runs)
    setup = " ".join([
        "`bertpipe serve` (serving/local_server.py: tornado REST, grpcio gRPC, request",
        f"batching) on 127.0.0.1 in its own process, serving {model_root.name} version",
        f"{version} from `{shown_root}` (a fine-tuned all-MiniLM-L6-v2: `make demo`'s by",
        "default) with the batching parameters"
        + (" of the TF Serving deployment (serving/deploy/batching_parameters.txt:"
           if not args.batching_parameters_file else f" of {batching_file} (")
        + " max_batch_size",
        f"{batching.max_batch_size}, batch_timeout_micros {batching.batch_timeout_micros},",
        f"num_batch_threads {batching.num_batch_threads}). Requests carry real SST-2 dev",
        f"sentences ({len(sentences)}, in file order, wrapping around): raw text in, label",
        "and probabilities out, through this project's clients (serving/client.py:",
        "`RestClient`, row format over a kept-alive requests session; `GrpcClient`). Each",
        "client thread sends its next request when its last one is answered; the clients run",
        "in the benchmark process, on the same 2 cores as the server.",
    ])
    method = " ".join([
        "**direct** is the baseline, in the same script: the model's `serving_default`",
        "called in the benchmark process by one caller, no server. Latency: from sending a",
        "request to its parsed answer (a lone request also waits up to batch_timeout_micros",
        "for others to join its batch, as in TF Serving). sentences/s: answered sentences /",
        "wall time of the mode. Texts per model call: from the server's",
        "`bertpipe_serving_batch_size` metric, what request batching made of the load.",
        f"{args.rounds} rounds, the modes interleaved within each round; figures are medians",
        "over rounds; × direct = the mode's sentences/s over direct's in the same round.",
        f"{errors} requests failed; no mode hit its time limit of {args.time_limit:g} s."
        if all(run.completed == run.requested for runs in results.values() for run in runs)
        else f"{errors} requests failed; some modes hit their time limit of "
             f"{args.time_limit:g} s (requests (ok) < requests).",
    ])
    text = "\n\n".join([setup, method, "\n".join(rows)])
    if args.no_write:
        print(text)
    else:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
