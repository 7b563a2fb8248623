"""Re-exports a pipeline run's fine-tuned classifier in each serving variant, for
bench/serving_latency.py and bench/serving_load.py.

The Trainer exports one variant (its --serving-precision / --serving-xla); to compare them on
the same weights without training again, this loads the pushed model's float32 weights into a
new classifier (trainer/model.py: warm_start, as a warm-started Trainer does) and writes the
export of trainer/export.py once per variant, with the run's own Transform graph and
tokenizer, into <output>/<variant>/1 (a model root that `bertpipe serve` and the benchmarks
take).

  python bench/export_variants.py --run-dir RUN_DIR --output DIR [--variant bfloat16-xla ...]
"""
from __future__ import annotations

import argparse
import os
import pathlib

import bench_env  # noqa: F401  first: sets up the environment TF needs

# name -> (precision, xla): the variants trainer/export.py can write.
VARIANTS = {"float32": ("float32", False), "float32-xla": ("float32", True),
            "bfloat16": ("bfloat16", False), "bfloat16-xla": ("bfloat16", True)}


def export_variants(run_dir: str, output: pathlib.Path, names) -> None:
    import tensorflow_transform as tft

    from pipeline import runs
    from preprocessing.checkpoint import read_tokenizer_settings
    from preprocessing.features import LABEL_VOCABULARY
    from preprocessing.tokenization import BertTokenizerGraph
    from serving.predict import resolve_saved_model_dir
    from trainer import export, model
    from trainer.config import TrainerSettings

    run = runs.read_run(run_dir)
    served = os.path.join(run.artifact("Trainer", "model").uri, "Format-Serving")
    checkpoint = run.artifact("PretrainedCheckpointImporter", "result").uri
    tft_output = tft.TFTransformOutput(run.artifact("Transform", "transform_graph").uri)
    num_labels = len(tft_output.vocabulary_by_name(LABEL_VOCABULARY))
    settings = TrainerSettings.from_custom_config(
        run.get("Trainer").json_property("custom_config"))
    max_seq_length = settings.max_seq_length
    classifier = model.build_classifier(checkpoint, num_labels, dropout=0.0,
                                        pooling=settings.training.pooling)
    model.warm_start(classifier, served)
    for name in names:
        precision, xla = VARIANTS[name]
        target = output / name / "1"
        tokenizer = BertTokenizerGraph(read_tokenizer_settings(checkpoint), max_seq_length)
        export.export_serving_model(
            classifier, tft_output, settings.text_feature, settings.label_feature,
            str(target), tokenizer,
            export.ServingOptions(precision=precision, xla=xla),
            encoder_model=(model.serving_copy(classifier, checkpoint, precision)
                           if precision != "float32" else None))
        print(f"{name}: {resolve_saved_model_dir(str(output / name))}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True,
                        help="a finished run's directory (<output-dir>/<pipeline name>)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS),
                        help="default: all of them")
    args = parser.parse_args()
    export_variants(args.run_dir, pathlib.Path(args.output), args.variant or list(VARIANTS))


if __name__ == "__main__":
    main()
