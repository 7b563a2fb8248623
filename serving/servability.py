"""Can stock TensorFlow Serving load and call this SavedModel? The check the ServingCheck runs.

`check_saved_model(saved_model_dir, texts)` runs serving/model_probe.py in a fresh Python
process and checks what it saw:

1. Ops: every op the model uses that core TensorFlow does not register must be one TF Serving
   TF_SERVING_RELEASE links in (serving/tf_serving_ops.py), or the model server would fail
   with "Op type not registered".
2. Signature and answers: loaded as the model server loads it, `serving_default` must meet the
   contract (serving/contract.py), the model's warm-up requests must run (the model server
   refuses a version whose warm-up fails), and its answers on the example texts must be well
   formed (probabilities summing to 1, the label the most probable class).

It returns a JSON-able report (ops, non-core ops, signature, sample predictions) or raises
ServingCheckError naming every problem.

`check_precision_agreement(saved_model_dir, example_files)` is the check of a model exported in
a cheaper precision than float32 (bfloat16): on real examples, its labels must agree with its
float32 weights' on at least MIN_LABEL_AGREEMENT of them and no probability may differ by more
than MAX_PROBABILITY_DIFFERENCE (serving/contract.py). A float32 model passes without a probe.

No TFX: components/serving_check.py wraps both checks as a pipeline component.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import AbstractSet, Any, Dict, List, Optional, Sequence

from serving import contract
from serving.tf_serving_ops import (ALLOW_LIST_SOURCE, TF_SERVING_CUSTOM_OPS,
                                    TF_SERVING_RELEASE, unsupported_op_problems)

DEFAULT_EXAMPLE_TEXTS = ("a great film", "terrible service", "")
SUBPROCESS_TIMEOUT_SECONDS = 900
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class ServingCheckError(ValueError):
    """The model cannot be served by stock TF Serving; the message lists every problem."""

    def __init__(self, message: str, problems: Sequence[str] = (),
                 report: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.problems = list(problems)
        self.report = report or {}


def run_probe(mode: str, saved_model_dir: str,
              request: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """`python -m serving.model_probe MODE ...` in a fresh process; its JSON result."""
    with tempfile.TemporaryDirectory(prefix="serving_check_") as work_dir:
        request_path = os.path.join(work_dir, "request.json")
        result_path = os.path.join(work_dir, "result.json")
        with open(request_path, "w", encoding="utf-8") as handle:
            json.dump(request or {}, handle)
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # cwd is the empty work directory: no module of the caller's directory can be imported.
        process = subprocess.run(
            [sys.executable, "-m", "serving.model_probe", mode, saved_model_dir, request_path,
             result_path], cwd=work_dir, env=env, capture_output=True, text=True,
            timeout=SUBPROCESS_TIMEOUT_SECONDS)
        if process.returncode != 0 or not os.path.exists(result_path):
            stderr_tail = "\n".join(process.stderr.strip().splitlines()[-15:])
            raise ServingCheckError(
                f"The serving check subprocess ({mode}) failed with exit status "
                f"{process.returncode} on {saved_model_dir}:\n{stderr_tail}",
                problems=[f"{mode} subprocess failed: {stderr_tail}"])
        with open(result_path, encoding="utf-8") as handle:
            result = json.load(handle)
    if result.get("unexpected_imports"):
        raise ServingCheckError(
            f"The serving check subprocess ({mode}) was not clean: it imported "
            f"{result['unexpected_imports']} (a sitecustomize or .pth file?), so it cannot prove "
            "what a stock model server registers.")
    return result


def _call_problems(call: Dict[str, Any]) -> List[str]:
    if "error" in call:
        return [f"calling {contract.SERVING_SIGNATURE!r} on {call['texts']!r} failed: "
                f"{call['error']}"]
    return contract.prediction_problems(call["texts"], call["outputs"])


def _sample_predictions(call: Dict[str, Any]) -> List[Dict[str, Any]]:
    outputs = call["outputs"]
    return [{"text": text, contract.PREDICTED_LABEL: label, contract.CLASSES: row_classes,
             contract.PROBABILITIES: row_probabilities}
            for text, label, row_classes, row_probabilities in zip(
                call["texts"], outputs[contract.PREDICTED_LABEL]["values"],
                outputs[contract.CLASSES]["values"],
                outputs[contract.PROBABILITIES]["values"])]


def _has_saved_model(saved_model_dir: str) -> bool:
    import tensorflow as tf
    return any(tf.io.gfile.exists(os.path.join(saved_model_dir, name))
               for name in _SAVED_MODEL_FILES)


def served_precision(saved_model_dir: str) -> str:
    """The precision the model serves in (its recorded serving options; float32 if none)."""
    import tensorflow as tf
    path = os.path.join(saved_model_dir, contract.SERVING_OPTIONS_FILE)
    if not tf.io.gfile.exists(path):
        return "float32"
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle).get("precision", "float32")


def check_precision_agreement(saved_model_dir: str, example_files: Sequence[str],
                              max_examples: int = 1000,
                              min_label_agreement: float = contract.MIN_LABEL_AGREEMENT,
                              max_probability_difference: float =
                              contract.MAX_PROBABILITY_DIFFERENCE) -> Dict[str, Any]:
    """The agreement report of a reduced-precision model with its float32 weights on the first
    `max_examples` examples of `example_files`; raises ServingCheckError if it is out of bounds.
    A float32 model gets {"precision": "float32"} and no probe."""
    precision = served_precision(saved_model_dir)
    if precision == "float32":
        return {"precision": precision}
    if not example_files:
        raise ServingCheckError(
            f"The model at {saved_model_dir} serves in {precision}, but the serving check got no "
            "examples to compare it with float32 on.", problems=["no examples for agreement"])
    compared = run_probe("compare_precision", saved_model_dir,
                         {"example_files": list(example_files), "max_examples": max_examples})
    if "error" in compared:
        raise ServingCheckError(f"Cannot compare {saved_model_dir} with float32: "
                                f"{compared['error']}", problems=[compared["error"]])
    served, reference = compared["served"], compared["reference"]
    if not served:
        raise ServingCheckError(f"The example files {list(example_files)} hold no example to "
                                "compare precisions on.", problems=["no examples for agreement"])
    argmax = lambda row: max(range(len(row)), key=row.__getitem__)  # noqa: E731
    agreeing = sum(argmax(a) == argmax(b) for a, b in zip(served, reference))
    difference = max(abs(x - y) for a, b in zip(served, reference) for x, y in zip(a, b))
    report = {"precision": precision, "examples": len(served),
              "label_agreement": agreeing / len(served),
              "max_probability_difference": difference,
              "min_label_agreement": min_label_agreement,
              "max_probability_difference_allowed": max_probability_difference}
    problems = []
    if report["label_agreement"] < min_label_agreement:
        problems.append(f"{precision} labels agree with float32 on {agreeing} of {len(served)} "
                        f"examples ({100 * report['label_agreement']:.2f}%), below "
                        f"{100 * min_label_agreement:.2f}%")
    if difference > max_probability_difference:
        problems.append(f"a {precision} probability differs from float32's by {difference:.4f}, "
                        f"more than {max_probability_difference}")
    if problems:
        raise ServingCheckError(
            f"The {precision} model at {saved_model_dir} does not answer like its float32 "
            "weights:\n" + "\n".join(f"  - {problem}" for problem in problems)
            + "\nExport it in float32 (--serving-precision float32) instead.",
            problems=problems, report=report)
    return report


def check_saved_model(saved_model_dir: str, texts: Sequence[str] = DEFAULT_EXAMPLE_TEXTS,
                      allowed_custom_ops: AbstractSet[str] = TF_SERVING_CUSTOM_OPS
                      ) -> Dict[str, Any]:
    """Checks that stock TF Serving can load and call the SavedModel; returns the report.

    Raises ServingCheckError naming every problem (unsupported ops, signature, predictions);
    the report so far is on the error's `report`.
    """
    texts = list(texts)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise ValueError(f"texts must be a non-empty list of strings, got {texts!r}")
    if not _has_saved_model(saved_model_dir):
        problem = f"there is no SavedModel (saved_model.pb) in {saved_model_dir}"
        raise ServingCheckError(f"The serving check found nothing to check: {problem}; a Model "
                                "artifact keeps its serving export in <uri>/Format-Serving.",
                                problems=[problem])
    probe = run_probe("check", saved_model_dir, {"batches": [texts, texts[:1]]})
    problems = unsupported_op_problems(probe["non_core_ops"], allowed_custom_ops)
    if "load_error" in probe:
        problems.append(f"loading the SavedModel (tag {contract.SERVE_TAG!r}) failed: "
                        f"{probe['load_error']}")
    else:
        problems += contract.signature_problems(probe.get("signature"),
                                                probe.get("signature_keys", ()))
    if probe.get("warmup_error"):
        problems.append("TF Serving replays the model's warm-up requests when it loads a version "
                        f"and refuses the version if one fails: {probe['warmup_error']}")
    calls = probe.get("calls", [])
    for call in calls:  # all texts in one batch, then a batch of one: report the first failure
        call_problems = _call_problems(call)
        if call_problems:
            problems += call_problems
            break
    signature = probe.get("signature", {})
    report = {
        "saved_model_dir": saved_model_dir,
        "tf_serving_release": TF_SERVING_RELEASE,
        "allow_list_source": ALLOW_LIST_SOURCE,
        "tensorflow_version": probe["tensorflow_version"],
        "tensorflow_text_version": probe.get("tensorflow_text_version"),
        "ops": probe["ops"],
        "non_core_ops": probe["non_core_ops"],
        "unsupported_ops": sorted(set(probe["non_core_ops"]) - set(allowed_custom_ops)),
        "signature": signature,
        "warmup_requests": probe.get("warmup_requests", 0),
        "sample_predictions": (_sample_predictions(calls[0])
                               if calls and not problems else []),
        "problems": problems,
    }
    if problems:
        raise ServingCheckError(
            f"The model at {saved_model_dir} fails the serving check (stock TensorFlow Serving "
            f"{TF_SERVING_RELEASE}, signature {contract.SERVING_SIGNATURE!r}):\n"
            + "\n".join(f"  - {problem}" for problem in problems),
            problems=problems, report=report)
    return report
