"""A bfloat16 serving export and the ServingCheck's agreement check of it with float32.

The model is the real export (trainer/export.py) of a tiny BERT classifier on the demo data's
Transform graph, in bfloat16 with its float32 weights beside it; the ServingCheck's executor
runs on real artifacts (the Model, and ExampleGen's Examples whose eval split it compares on),
its probes in their real subprocesses. The tiny BERT is untrained, so its head is scaled up to
give decisive labels, as a trained classifier's are: near-ties would flip under any rounding.
"""
import glob
import json
import os

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.types import standard_artifacts

from components import serving_check
from preprocessing.checkpoint import read_tokenizer_settings
from preprocessing.tokenization import BertTokenizerGraph
from serving import contract
from serving.servability import ServingCheckError
from trainer import export, model

HEAD_SCALE = 50.0


def export_model(trainer_inputs, uri, precision, corrupt_variant=False):
    """The serving export under <uri>/Format-Serving; `corrupt_variant`: the bfloat16 copy gets
    a negated head, a variant that no longer answers like the weights it was made from."""
    classifier = model.build_classifier(trainer_inputs.checkpoint, num_labels=2)
    head = classifier.get_layer("classifier")
    head.kernel.assign(head.kernel * HEAD_SCALE)
    encoder_model = None
    if precision != "float32":
        encoder_model = model.serving_copy(classifier, trainer_inputs.checkpoint, precision)
        if corrupt_variant:
            copy_head = encoder_model.get_layer("classifier")
            copy_head.kernel.assign(-copy_head.kernel)
    tokenizer = BertTokenizerGraph(read_tokenizer_settings(trainer_inputs.checkpoint), 32)
    export.export_serving_model(
        classifier, tft.TFTransformOutput(trainer_inputs.transform_output), "text", "label",
        os.path.join(uri, "Format-Serving"), tokenizer,
        export.ServingOptions(precision=precision), encoder_model=encoder_model)
    return str(uri)


def run_serving_check(trainer_inputs, model_uri, blessing_uri):
    """The ServingCheck executor on the Model at model_uri and the demo run's raw Examples."""
    [examples_uri] = glob.glob(f"{trainer_inputs.config.pipeline_root}/*ExampleGen/examples/*")
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = '["train", "eval"]'
    model_artifact = standard_artifacts.Model()
    model_artifact.uri = model_uri
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(blessing_uri)
    os.makedirs(blessing.uri, exist_ok=True)
    serving_check.Executor().Do(
        {serving_check.MODEL_KEY: [model_artifact], serving_check.EXAMPLES_KEY: [examples]},
        {serving_check.BLESSING_KEY: [blessing]}, {})
    return blessing


def report_of(blessing):
    with open(os.path.join(blessing.uri, serving_check.REPORT_FILE_NAME)) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def bfloat16_model(trainer_inputs, tmp_path_factory):
    return export_model(trainer_inputs, tmp_path_factory.mktemp("bfloat16"), "bfloat16")


def test_bfloat16_export_serves_bfloat16_and_keeps_a_float32_reference(bfloat16_model):
    serving_dir = os.path.join(bfloat16_model, "Format-Serving")
    assert export.read_serving_options(serving_dir).precision == "bfloat16"
    loaded = tf.saved_model.load(serving_dir)
    assert hasattr(loaded, contract.FLOAT32_REFERENCE_FUNCTION)
    # The served encoder computes in bfloat16; the float32 weights are kept for warm starts
    # (read from the SavedModel's checkpoint: the export keeps no Keras call traces).
    dtypes = tf.train.load_checkpoint(
        os.path.join(serving_dir, "variables", "variables")).get_variable_to_dtype_map()
    assert tf.bfloat16 in {dtype for name, dtype in dtypes.items()
                           if name.startswith("serving_classifier/")}
    assert {dtype for name, dtype in dtypes.items() if name.startswith("classifier/")} == {
        tf.float32}
    # No signature re-initializes a table in the bfloat16 export either.
    assert all(not ops for ops in export.table_init_ops(serving_dir).values())


def test_serving_check_blesses_a_bfloat16_model_that_agrees_with_float32(
        bfloat16_model, trainer_inputs, tmp_path):
    blessing = run_serving_check(trainer_inputs, bfloat16_model, tmp_path / "blessing")
    assert blessing.get_int_custom_property(serving_check.BLESSED_PROPERTY) == 1
    agreement = report_of(blessing)["precision_agreement"]
    assert agreement["precision"] == "bfloat16"
    assert agreement["examples"] == 108  # the demo eval split, every row
    assert agreement["label_agreement"] >= contract.MIN_LABEL_AGREEMENT
    # bfloat16 keeps 8 bits of mantissa: the probabilities move, a little.
    assert 0 < agreement["max_probability_difference"] <= contract.MAX_PROBABILITY_DIFFERENCE


def test_serving_check_stops_a_variant_that_answers_unlike_its_float32_weights(
        trainer_inputs, tmp_path):
    corrupt = export_model(trainer_inputs, tmp_path / "corrupt", "bfloat16",
                           corrupt_variant=True)
    with pytest.raises(ServingCheckError, match=r"bfloat16 labels agree with float32 on \d+ of "
                                                r"108 examples .*below 99.50%"):
        run_serving_check(trainer_inputs, corrupt, tmp_path / "blessing")
    blessing_dir = tmp_path / "blessing"
    assert (blessing_dir / serving_check.NOT_BLESSED_FILE_NAME).exists()
    assert not (blessing_dir / serving_check.BLESSED_FILE_NAME).exists()
    report = json.loads((blessing_dir / serving_check.REPORT_FILE_NAME).read_text())
    assert report["precision_agreement"]["label_agreement"] < 0.5 and report["problems"]
    assert report["non_core_ops"]  # the servability part of the report is kept too
