"""ValidationGate: stops the pipeline when ExampleValidator found anomalies.

TFX's ExampleValidator records anomalies but lets the run go on. Transform (and so training)
runs only after this gate, which fails the run with one readable summary per split: which
feature, what is wrong, which split.
"""

import os
from typing import Dict, List

from tensorflow_data_validation.utils import anomalies_util
from tfx.components.example_validator.executor import DEFAULT_FILE_NAME as ANOMALIES_FILE
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts


class DataValidationError(ValueError):
    """The data does not match the schema; the message lists every anomaly by split/feature."""


def describe_anomalies(anomalies_artifact: standard_artifacts.ExampleAnomalies
                       ) -> Dict[str, List[str]]:
    """{split: ['feature 'x': short description: details', ...]} for splits with anomalies."""
    found = {}
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split),
                            ANOMALIES_FILE)
        anomalies = anomalies_util.load_anomalies_binary(path)
        lines = [f"feature {name!r}: {info.short_description}: {info.description}"
                 for name, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"dataset: {info.short_description}: {info.description}")
        if lines:
            found[split] = lines
    return found


@component
def ValidationGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]):
    """Raises DataValidationError if any split has anomalies."""
    found = describe_anomalies(anomalies)
    if not found:
        return
    summary = "Data validation failed: the data does not match the schema.\n" + "\n".join(
        f"  split {split!r}: {line}" for split, lines in sorted(found.items()) for line in lines)
    summary += ("\nFix the data, or, if the change is intended, update the curated schema "
                "(--schema) and run again. Nothing was transformed or trained.")
    raise DataValidationError(summary)
