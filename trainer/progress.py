"""Training progress while model.fit runs: step/total, examples/s, loss and time remaining.

A Keras callback. On a terminal it redraws one bar line every `every_seconds`; elsewhere (a
log file, a Vertex AI job's log) it prints a plain line at a longer interval. Each epoch ends
with a line of its metrics (validation included). The first step is reported as it starts,
because it includes building the training graph (seconds to a minute) and would otherwise look
like a hang; its time is left out of the examples/s and the remaining-time estimate.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

import tf_keras as keras

TTY_INTERVAL_SECONDS = 2.0
LOG_INTERVAL_SECONDS = 15.0
_BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class TrainingProgress(keras.callbacks.Callback):
    """Reports fit's progress over all epochs to `stream` (default: stdout)."""

    def __init__(self, batch_size: int, stream: Optional[TextIO] = None,
                 every_seconds: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic, label: str = "training"):
        super().__init__()
        self._batch_size = batch_size
        self._stream = stream or sys.stdout
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._every = every_seconds if every_seconds is not None else (
            TTY_INTERVAL_SECONDS if self._tty else LOG_INTERVAL_SECONDS)
        self._clock = clock
        self._label = label
        self._epoch = 0
        self._steps = self._total = 0
        self._first_step_done: Optional[float] = None
        self._steady_steps = 0
        self._last_report = 0.0

    def _write(self, line: str, final: bool = True) -> None:
        if self._tty:
            self._stream.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def on_train_begin(self, logs=None):
        epochs, steps = self.params.get("epochs") or 1, self.params.get("steps") or 0
        self._steps, self._total = steps, epochs * steps
        self._write(f"{self._label}: {epochs} epochs x {steps} steps of {self._batch_size} "
                    "examples; the first step builds the training graph")
        self._last_report = self._clock()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        now = self._clock()
        step = self._epoch * self._steps + batch + 1
        if self._first_step_done is None:
            self._first_step_done = now
            self._write(f"{self._label}: first step done in "
                        f"{_duration(now - self._last_report)} (graph built)", final=True)
            self._last_report = now
            return
        self._steady_steps += 1
        if now - self._last_report < self._every and step < self._total:
            return
        self._last_report = now
        self._write(self._status(step, now, (logs or {}).get("loss")), final=not self._tty)

    def _status(self, step: int, now: float, loss: Optional[float]) -> str:
        elapsed = max(now - self._first_step_done, 1e-9)
        steps_per_second = self._steady_steps / elapsed
        remaining = (self._total - step) / steps_per_second if steps_per_second else 0.0
        parts = [f"step {step}/{self._total}",
                 f"{steps_per_second * self._batch_size:.1f} examples/s"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        parts.append(f"ETA {_duration(remaining)}")
        if self._tty and self._total:
            done = int(_BAR_WIDTH * step / self._total)
            parts.insert(0, "[" + "#" * done + "." * (_BAR_WIDTH - done) + "]")
        return f"{self._label}: " + "  ".join(parts)

    def on_epoch_end(self, epoch, logs=None):
        metrics = "  ".join(f"{name} {float(value):.4f}"
                            for name, value in sorted((logs or {}).items()))
        epochs = self.params.get("epochs") or 1
        self._write(f"{self._label}: epoch {epoch + 1}/{epochs} done  {metrics}")
