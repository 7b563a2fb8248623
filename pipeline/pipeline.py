"""The pipeline: which components run, what feeds what, and which settings each one gets.

  PretrainedCheckpoint (Importer) ------------------------------+----------+
  ExampleGen -> StatisticsGen -> SchemaGen | ImportSchemaGen    |          |
             -> ExampleValidator -> ValidationGate -> Transform <+-> Trainer <+
  LatestBlessedModel (Resolver) -> Trainer (warm start, when on)
  Transform -> TextStatisticsGen -> TextSchemaGen -> TextValidator [-> TextValidationGate]
  TextStatisticsGen + the previous span's (Resolver) -> DriftValidator ({SPAN} data)
                                                        -> DriftGate | ServingPusher
  TextValidationGate, DriftGate (when set to stop the run) -> Tuner, Trainer
  Trainer -> ServedBaseline (the version being served) -> Evaluator (baseline), ServingPusher
  Trainer -> Evaluator, ServingCheck
  Evaluator (blessing) + ServingCheck (infra blessing) -> ServingPusher

`create_pipeline` only builds the DAG: it reads no file and touches no network or cloud API, so
it compiles on any machine (pipeline/kubeflow_v2_runner.py). What a local run must read first is
settled by pipeline/local_inputs.py. Each component is given only the settings it uses, so TFX's
cache reruns exactly the components a changed setting affects: a new blessing threshold reruns
the Evaluator and what follows it, not Transform or the Trainer.
"""
from __future__ import annotations

import contextlib
import dataclasses

# TFX's modules, not the `tfx.v1` facade: importing `tfx.v1` imports its Vertex AI extensions
# and with them the Vertex AI client (~3 s, ~1,400 modules in every process, which also slow
# Beam's per-bundle bookkeeping); the Vertex components are imported only when asked for.
from tfx.components import ExampleValidator, ImportExampleGen, SchemaGen, StatisticsGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.experimental.conditionals.conditional import Cond
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import \
    LatestBlessedModelStrategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import tuner_pb2
from tfx.types import Channel, standard_artifacts

from components.checkpoint_inputs import Trainer, Transform, checkpoint_importer
from components.previous_span import PreviousSpanStrategy
from components.proto_settings import RETRAIN_PROPERTY, BoundsValidator, DriftValidator
from components.pusher import ServingPusher, serving_push_destination
from components.served_baseline import Evaluator, ServedBaseline
from components.serving_check import ServingCheck
from components.text_example_gen import TextExampleGen
from components.tuner import Tuner
from components.validation_gate import ValidationGate
from pipeline import cloud_resources, data_quality, user_code
from pipeline.config import PipelineConfig
from pipeline.data_inputs import example_gen_inputs
from pipeline.eval_config import make_eval_config
from preprocessing.features import (CHECKPOINT_KEY, LABEL_FEATURE_KEY, MAX_SEQ_LENGTH_KEY,
                                    TEXT_FEATURE_KEY)
from trainer.config import TUNING_KEY

# The statistics of the tokenized text; the previous run's are the baseline of drift.
TEXT_STATISTICS_GEN = "TextStatisticsGen"


def create_pipeline(config: PipelineConfig, kubeflow: bool = False) -> tfx_pipeline.Pipeline:
    """The pipeline of `config`, whose paths must be URIs or paths and whose checkpoint a
    directory URI (local_inputs.prepare_local_run settles them for a local run). `kubeflow`:
    for KubeflowV2DagRunner, which takes only TFX's canned resolver strategies."""
    config = config.resolved()
    data, model, runtime = config.data, config.model, config.runtime
    checkpoint = checkpoint_importer(model.checkpoint)

    input_base, input_config, output_config = example_gen_inputs(data)
    if data.data_format == "tfrecord":
        example_gen = ImportExampleGen(
            input_base=input_base, input_config=input_config, output_config=output_config)
    else:
        example_gen = TextExampleGen(
            input_base=input_base, input_config=input_config, output_config=output_config,
            text_column=data.text_column, label_column=data.label_column,
            data_format=data.data_format, span_window=data.span_window)

    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    if data.schema_path:
        schema_gen = ImportSchemaGen(schema_file=data.schema_path)
    else:  # First run: infer from the training split only, so eval data is checked against it.
        schema_gen = SchemaGen(
            statistics=statistics_gen.outputs["statistics"], exclude_splits=["eval"])
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(anomalies=example_validator.outputs["anomalies"])

    transform = Transform(
        pretrained_checkpoint=checkpoint.outputs["result"],
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
        preprocessing_fn=user_code.PREPROCESSING_FN,
        # The one analyzer is the label vocabulary, which costs less to compute than TF
        # Transform's cache costs to read, check and write (2.5 s of the demo's 19 s Transform).
        disable_analyzer_cache=True,
        custom_config={TEXT_FEATURE_KEY: data.text_column, LABEL_FEATURE_KEY: data.label_column,
                       MAX_SEQ_LENGTH_KEY: model.max_seq_length})
    transform.add_upstream_node(validation_gate)  # anomalies stop the run before Transform
    components = [checkpoint, example_gen, statistics_gen, schema_gen, example_validator,
                  validation_gate, transform]
    quality_nodes, training_gates, drift_anomalies = _text_quality(
        config, example_gen, transform, kubeflow)
    components += quality_nodes
    if not runtime.train:
        return _pipeline(config, components)

    # The latest blessed model of this pipeline: the Trainer's warm start when that is on (by
    # default when retraining on {SPAN} data).
    latest_blessed = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver") if config.training.warm_start else None
    # --retrain-on drift: the training half runs only when the span drifted (or is the first).
    with _training_condition(config, drift_anomalies):
        tuner = _tuner(config, transform, schema_gen) if config.tuning.tune else None
        # On Vertex AI Training (--trainer-backend vertex-training) or in its pipeline node.
        trainer_class = Trainer
        if config.resources.vertex_training:
            from components.vertex_training import VertexTrainer
            trainer_class = VertexTrainer
        trainer = trainer_class(
            pretrained_checkpoint=checkpoint.outputs["result"],
            run_fn=user_code.RUN_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            base_model=latest_blessed.outputs["model"] if latest_blessed else None,
            hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
            custom_config={**config.trainer_settings().to_custom_config(),
                           **cloud_resources.vertex_training_config(config)})
        for gate in training_gates:  # text anomalies or drift set to stop the run
            trainer.add_upstream_node(gate)
            if tuner:
                tuner.add_upstream_node(gate)
        # The candidate must match what is served now, whichever pipeline or person pushed it.
        served_baseline = ServedBaseline(
            model=trainer.outputs["model"],
            model_dir=serving_push_destination(config.serving_model_root,
                                               config.serving.model_name).filesystem.base_directory,
            allow_replace_served=config.serving.allow_replace_served)
        evaluator = Evaluator(
            examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
            baseline_model=served_baseline.outputs["baseline"],
            eval_config=make_eval_config(config.evaluation, data.label_values))
        # GPUs and limits of the cloud tasks (Kubeflow Pipelines v2 / Vertex AI Pipelines).
        for node, resources in ((trainer, cloud_resources.trainer_node_resources(config)),
                                (evaluator, cloud_resources.evaluator_node_resources(config))):
            if resources is not None:
                node.with_platform_config(resources)

        # Servable by TF Serving? A bfloat16 export must also answer like float32 on eval examples.
        serving_check = ServingCheck(model=trainer.outputs["model"],
                                     examples=example_gen.outputs["examples"])
        pusher = ServingPusher(
            model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
            infra_blessing=serving_check.outputs["blessing"],
            served_baseline=served_baseline.outputs["baseline"],
            drift_anomalies=(drift_anomalies if config.quality.drift_action == "stop-push"
                             else None),
            serving_root=config.serving_model_root, model_name=config.serving.model_name)

    return _pipeline(config, components + [node for node in (tuner, latest_blessed) if node] + [
        trainer, served_baseline, evaluator, serving_check, pusher])


def _text_quality(config: PipelineConfig, example_gen, transform, kubeflow: bool):
    """The checks of the tokenized text: (nodes, gates the training must wait for, drift
    anomalies or None).

    TextStatisticsGen describes Transform's per-text statistics features per split and label;
    TextValidator holds them to the quality section's bounds (against a schema inferred from
    the same statistics, which only the bounds can fail). With {SPAN} data, DriftValidator
    compares them with those of the previous span; on the first span there is nothing to
    compare with, and it passes.
    """
    quality = config.quality
    text_statistics = StatisticsGen(
        examples=transform.outputs["transformed_examples"],
        stats_options=data_quality.text_statistics_options()).with_id(TEXT_STATISTICS_GEN)
    statistics = text_statistics.outputs["statistics"]
    text_schema = SchemaGen(statistics=statistics).with_id("TextSchemaGen")
    text_validator = BoundsValidator(
        statistics=statistics, schema=text_schema.outputs["schema"],
        custom_validation_config=data_quality.text_bounds(quality)).with_id("TextValidator")
    nodes = [text_statistics, text_schema, text_validator]
    gates = []
    if quality.text_anomalies == "stop-run":
        gates.append(ValidationGate(anomalies=text_validator.outputs["anomalies"],
                                    statistics=statistics, check="text",
                                    spans=int(config.data.has_spans)
                                    ).with_id("TextValidationGate"))
    drift_anomalies = None
    if config.data.has_spans:
        candidates = Channel(type=standard_artifacts.ExampleStatistics,
                             producer_component_id=TEXT_STATISTICS_GEN, output_key="statistics")
        if kubeflow:
            # KFP v2 runs only TFX's two canned strategies, as a task before the others; its
            # query selects by artifact type alone (docs/ARCHITECTURE.md: drift on Vertex AI).
            previous = Resolver(strategy_class=LatestArtifactStrategy, statistics=candidates)
        else:  # The newest statistics of an earlier span than this run's examples.
            previous = Resolver(strategy_class=PreviousSpanStrategy,
                                examples=example_gen.outputs["examples"], statistics=candidates)
        previous = previous.with_id("previous_span_statistics_resolver")
        drift_validator = DriftValidator(
            statistics=statistics,
            # Optional: on the first span there is nothing to compare with, and it passes.
            baseline_statistics=previous.outputs["statistics"].as_optional(),
            config=data_quality.drift_config(quality)).with_id("DriftValidator")
        drift_anomalies = drift_validator.outputs["anomalies"]
        nodes += [previous, drift_validator]
        if quality.drift_action == "stop-run":
            gates.append(ValidationGate(anomalies=drift_anomalies, statistics=statistics,
                                        check="drift", spans=1).with_id("DriftGate"))
    return nodes + gates, gates, drift_anomalies


def _training_condition(config: PipelineConfig, drift_anomalies):
    """TFX's Cond on the DriftValidator's verdict for --retrain-on drift, else no condition."""
    if config.quality.retrain_on != "drift":
        return contextlib.nullcontext()
    return Cond(drift_anomalies.future()[0].custom_property(RETRAIN_PROPERTY) == 1)


def _tuner(config: PipelineConfig, transform, schema_gen):
    """The Tuner (--tune): locally TFX's Tuner (trials one after another), with
    vertex-training TFX's Vertex AI Tuner (`tuner_parallel_trials` at a time). It takes the
    Trainer's settings, the tuning section and the checkpoint's URI (custom_config: the Vertex
    Tuner's worker executor cannot take an extra input channel)."""
    custom_config = {**config.trainer_settings().to_custom_config(),
                     TUNING_KEY: dataclasses.asdict(config.tuning),
                     CHECKPOINT_KEY: config.model.checkpoint}
    inputs = dict(examples=transform.outputs["transformed_examples"],
                  transform_graph=transform.outputs["transform_graph"],
                  schema=schema_gen.outputs["schema"], tuner_fn=user_code.TUNER_FN)
    if config.resources.vertex_training:
        from tfx.extensions.google_cloud_ai_platform.tuner.component import Tuner as VertexTuner
        return VertexTuner(
            **inputs, tune_args=tuner_pb2.TuneArgs(
                num_parallel_trials=config.tuning.tuner_parallel_trials),
            custom_config={**custom_config, **cloud_resources.vertex_tuning_config(config)})
    return Tuner(**inputs, custom_config=custom_config)


def _pipeline(config: PipelineConfig, components) -> tfx_pipeline.Pipeline:
    return tfx_pipeline.Pipeline(
        pipeline_name=config.runtime.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.runtime.enable_cache,
        beam_pipeline_args=config.runtime.beam_pipeline_args,
    )
