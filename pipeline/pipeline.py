"""The pipeline: which components run, and what feeds what. Nothing else lives here.

  PretrainedCheckpoint (Importer) ------------------------------+----------+
  ExampleGen -> StatisticsGen -> SchemaGen | ImportSchemaGen    |          |
             -> ExampleValidator -> ValidationGate -> Transform <+-> Trainer <+
  LatestBlessedModel (Resolver) -> Trainer (warm start), Evaluator (baseline)
  Trainer -> Evaluator, ServingCheck
  Evaluator (blessing) + ServingCheck (infra blessing) -> ServingPusher
"""
from __future__ import annotations

import dataclasses

from tfx import v1 as tfx

from components.checkpoint_inputs import Trainer, Transform, checkpoint_importer
from components.pusher import ServingPusher
from components.serving_check import ServingCheck
from components.text_example_gen import TextExampleGen
from components.validation_gate import ValidationGate
from pipeline.config import PipelineConfig
from pipeline.data_inputs import example_gen_inputs
from pipeline.eval_config import make_eval_config
from preprocessing import preprocessing
from preprocessing.checkpoint import resolve_checkpoint
from trainer import task


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    config = config.resolved()
    checkpoint = checkpoint_importer(resolve_checkpoint(config.checkpoint))

    input_base, input_config, output_config = example_gen_inputs(config)
    if config.data_format == "tfrecord":
        example_gen = tfx.components.ImportExampleGen(
            input_base=input_base, input_config=input_config, output_config=output_config)
    else:
        example_gen = TextExampleGen(
            input_base=input_base, input_config=input_config, output_config=output_config,
            text_column=config.text_column, label_column=config.label_column,
            data_format=config.data_format, span_window=config.span_window)

    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    if config.schema_path:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=config.schema_path)
    else:  # First run: infer from the training split only, so eval data is checked against it.
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], exclude_splits=["eval"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(anomalies=example_validator.outputs["anomalies"])

    transform = Transform(
        pretrained_checkpoint=checkpoint.outputs["result"],
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
        preprocessing_fn=f"{preprocessing.__name__}.preprocessing_fn",
        custom_config={preprocessing.TEXT_FEATURE_KEY: config.text_column,
                       preprocessing.LABEL_FEATURE_KEY: config.label_column,
                       preprocessing.MAX_SEQ_LENGTH_KEY: config.max_seq_length})
    transform.add_upstream_node(validation_gate)  # anomalies stop the run before Transform
    components = [checkpoint, example_gen, statistics_gen, schema_gen, example_validator,
                  validation_gate, transform]
    if not config.train:
        return _pipeline(config, components)

    # The latest blessed model: the Trainer's warm start and the Evaluator's baseline.
    baseline_model = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    trainer = Trainer(
        pretrained_checkpoint=checkpoint.outputs["result"],
        run_fn=f"{task.__name__}.run_fn",
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        base_model=baseline_model.outputs["model"] if config.warm_start else None,
        custom_config={task.PIPELINE_CONFIG_KEY: dataclasses.asdict(config)})
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
        baseline_model=baseline_model.outputs["model"], eval_config=make_eval_config(config))

    serving_check = ServingCheck(model=trainer.outputs["model"])  # servable by TF Serving?
    pusher = ServingPusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        infra_blessing=serving_check.outputs["blessing"],
        serving_root=config.serving_model_root, model_name=config.model_name)

    return _pipeline(config, components + [baseline_model, trainer, evaluator, serving_check,
                                           pusher])


def _pipeline(config: PipelineConfig, components) -> tfx.dsl.Pipeline:
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        beam_pipeline_args=config.beam_pipeline_args,
    )
