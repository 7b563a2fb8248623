"""ValidationGate: stops the pipeline when a validator found anomalies.

TFX's ExampleValidator and DistributionValidator record anomalies but let the run go on. A gate
placed before the work the anomalies should prevent fails the run with one readable line per
anomaly: which feature, which split (or pair of splits of two spans), what is wrong, and, for
the bounds on the tokenized text, the measured value next to the bound. Three checks use it:

  schema  ExampleValidator on the raw data and the schema: before Transform
  text    ExampleValidator on the tokenized text's statistics and their bounds: before training
  drift   DistributionValidator, the new span against the previous one: before training
"""

import os
from typing import Dict, List, Optional

from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio  # gs:// URIs on Kubeflow/Vertex as well as local paths
from tfx.types import standard_artifacts

# Both validators write one SchemaDiff.pb per split: ExampleValidator under Split-<split>,
# DistributionValidator under SplitPair-<split>_<baseline split>.
ANOMALIES_FILE = "SchemaDiff.pb"
_SPLIT_DIR, _SPLIT_PAIR_DIR = "Split-", "SplitPair-"

CHECKS = {
    "schema": ("Data validation failed: the data does not match the schema.",
               "Fix the data, or, if the change is intended, update the curated schema "
               "(--schema-path) and run again. Nothing was transformed or trained."),
    "text": ("Text validation failed: the tokenized text is outside its bounds.",
             "Fix the data, raise max_seq_length or the checkpoint's vocabulary, or loosen the "
             "bound (--max-truncated-share, --max-unknown-token-share; --text-anomalies warn to "
             "only warn). Nothing was trained."),
    "drift": ("Drift: the new span differs from the previous span beyond the bounds.",
              "Check the new span; if the change is real and intended, run with --drift-action "
              "warn or looser bounds (--max-label-drift, --max-length-drift). Nothing was "
              "trained."),
}


class DataValidationError(ValueError):
    """The data failed a check; the message lists every anomaly by split and feature."""


def _split_names(anomalies_artifact: standard_artifacts.ExampleAnomalies) -> Dict[str, str]:
    """{split name as shown: its SchemaDiff.pb} for the splits the artifact holds."""
    found = {}
    uri = anomalies_artifact.uri
    for entry in sorted(fileio.listdir(uri)) if fileio.isdir(uri) else []:
        entry = entry.rstrip("/")  # object stores list directories with a trailing slash
        path = os.path.join(uri, entry, ANOMALIES_FILE)
        if entry.startswith(_SPLIT_PAIR_DIR):
            split = entry[len(_SPLIT_PAIR_DIR):]
            if "_" in split:  # train_train: this span's train against the previous one's
                test, base = split.split("_", 1)
                split = test if test == base else f"{test} (against {base})"
        elif entry.startswith(_SPLIT_DIR):
            split = entry[len(_SPLIT_DIR):]
        else:
            continue
        if fileio.exists(path):
            found[split] = path
    return found


def _measured_mean(statistics: Optional[standard_artifacts.ExampleStatistics], split: str,
                   feature: str) -> Optional[float]:
    """The mean of `feature` over all examples of `split`, or None if not in `statistics`."""
    if statistics is None:
        return None
    try:
        datasets = stats_artifact_utils.load_statistics(statistics, split).proto().datasets
    except Exception:  # noqa: BLE001 - a missing split only loses the measured value
        return None
    for dataset in datasets[:1]:  # the first dataset is all examples; the rest are slices
        for stats in dataset.features:
            if ".".join(stats.path.step) == feature and stats.HasField("num_stats"):
                return stats.num_stats.mean
    return None


def describe_anomalies(anomalies_artifact: standard_artifacts.ExampleAnomalies,
                       statistics: Optional[standard_artifacts.ExampleStatistics] = None
                       ) -> Dict[str, List[str]]:
    """{split: ["feature 'x': short description: details", ...]} for splits with anomalies.
    A bound from TFDV's custom validations gets the value measured in `statistics`."""
    found = {}
    for split, path in _split_names(anomalies_artifact).items():
        anomalies = anomalies_util.load_anomalies_binary(path)
        lines = []
        for name, info in sorted(anomalies.anomaly_info.items()):
            custom = [reason for reason in info.reason
                      if reason.type == anomalies_pb2.AnomalyInfo.CUSTOM_VALIDATION]
            if custom:
                measured = _measured_mean(statistics, split.split(" ")[0], name)
                value = f"measured {measured:.4g}" if measured is not None else "measured: ?"
                lines.extend(f"feature {name!r}: {reason.short_description}, {value}"
                             for reason in custom)
                continue
            short = info.short_description or "; ".join(
                reason.short_description for reason in info.reason)
            details = info.description or "; ".join(reason.description for reason in info.reason)
            lines.append(f"feature {name!r}: {short}: {details}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            details = info.description or "; ".join(reason.description for reason in info.reason)
            lines.append(f"dataset: {info.short_description}: {details}")
        if lines:
            found[split] = lines
    return found


def failure_message(check: str, found: Dict[str, List[str]], span: Optional[int] = None) -> str:
    headline, advice = CHECKS[check]
    where = f" of span {span}" if span is not None else ""
    return "\n".join([headline] + [
        f"  split {split!r}{where}: {line}"
        for split, lines in sorted(found.items()) for line in lines] + [advice])


@component
def ValidationGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
                   statistics: InputArtifact[standard_artifacts.ExampleStatistics] = None,
                   check: Parameter[str] = "schema", spans: Parameter[int] = 0):
    """Raises DataValidationError if any split has anomalies. `check`: a key of CHECKS;
    `statistics`: those the anomalies were found in, for measured values; `spans`: 1 when the
    data comes in spans, whose number the message then names."""
    found = describe_anomalies(anomalies, statistics)
    if found:
        raise DataValidationError(failure_message(check, found,
                                                  anomalies.span if spans else None))
