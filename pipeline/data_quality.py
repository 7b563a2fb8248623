"""The quality section as TFDV and TFX take it: statistics options, bounds, drift comparators.

The tokenized text is described by TFDV statistics of Transform's per-text statistics features
(preprocessing/features.py: characters, tokens before truncation, truncated or not, share of
[UNK], the raw label), for all examples and for each label (a TFDV slice). Its bounds are
TFDV custom validations (SQL over a feature's statistics), which ExampleValidator applies: a
TFDV schema constrains single values, not the share of texts that were truncated. Drift between
spans is TFX's DistributionValidator with TFDV's comparators: L-infinity for the label, and
Jensen-Shannon divergence for the text and token lengths. Builds protos only; reads nothing.
"""
from __future__ import annotations

import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.anomalies.proto import custom_validation_config_pb2
from tfx.proto import distribution_validator_pb2
from tfx_bsl.public.proto import slicing_spec_pb2

from pipeline.config import QualityConfig, flag_of
from preprocessing.features import (LABEL_NAME, TEXT_LENGTH, TEXT_STATISTICS_FEATURES,
                                    TOKEN_COUNT, TRUNCATED, UNKNOWN_TOKEN_SHARE)

# TFDV's name of the slice of all examples (the first dataset of sliced statistics).
ALL_EXAMPLES = "All Examples"
# Quantiles of tokens and characters per text in 1% steps (the report reads p50, p90, p99).
QUANTILE_BUCKETS = 100


def text_statistics_options() -> tfdv.StatsOptions:
    """TextStatisticsGen's options: the statistics features only (the token ids are not worth
    describing value by value), for all examples and for each label."""
    return tfdv.StatsOptions(
        feature_allowlist=list(TEXT_STATISTICS_FEATURES),
        num_quantiles_histogram_buckets=QUANTILE_BUCKETS,
        slicing_config=text_format.Parse(
            f'slicing_specs {{}} slicing_specs {{ feature_keys: "{LABEL_NAME}" }}',
            slicing_spec_pb2.SlicingConfig()))


def _bound(feature: str, bound: float, what: str, setting: str):
    validation = custom_validation_config_pb2.FeatureValidation(dataset_name=ALL_EXAMPLES)
    validation.feature_path.step.append(feature)
    # The description is the anomaly's short description: the gate adds the measured value.
    validation.validations.add(
        sql_expression=f"feature.num_stats.mean <= {bound!r}", severity="ERROR",
        description=f"{what} must be at most {bound:g} ({flag_of(setting)})")
    return validation


def text_bounds(quality: QualityConfig) -> custom_validation_config_pb2.CustomValidationConfig:
    """The bounds on each split's tokenized text, as TFDV custom validations."""
    return custom_validation_config_pb2.CustomValidationConfig(feature_validations=[
        _bound(TRUNCATED, quality.max_truncated_share,
               "the share of texts cut at max_seq_length", "max_truncated_share"),
        _bound(UNKNOWN_TOKEN_SHARE, quality.max_unknown_token_share,
               "the mean share of [UNK] among a text's tokens", "max_unknown_token_share"),
    ])


def drift_config(quality: QualityConfig
                 ) -> distribution_validator_pb2.DistributionValidatorConfig:
    """DistributionValidator's comparators: each split of the new span against the same split
    of the previous one."""
    config = distribution_validator_pb2.DistributionValidatorConfig()
    for feature, threshold, comparator in (
            (LABEL_NAME, quality.max_label_drift, "infinity_norm"),
            (TEXT_LENGTH, quality.max_length_drift, "jensen_shannon_divergence"),
            (TOKEN_COUNT, quality.max_length_drift, "jensen_shannon_divergence")):
        entry = config.default_slice_config.feature.add()
        entry.path.step.append(feature)
        getattr(entry.distribution_comparator, comparator).threshold = threshold
    return config
