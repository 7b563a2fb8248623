"""ServingCheck blesses a model stock TF Serving can load and call, and stops the run otherwise.

The models are real SavedModels built here (tf.Module + tf.function signature, tensorflow_text
tokenization, a tiny vocabulary table, softmax over 2 classes), laid out as a TFX Model
artifact (<uri>/Format-Serving/saved_model.pb); the checks run in their real subprocesses.
"""
import json
import os

import pytest
import tensorflow as tf
import tensorflow_text as tf_text
from tfx import v1 as tfx
from tfx.orchestration import metadata
from tfx.types import artifact_utils, standard_artifacts

from components import serving_check
from components.serving_check import ServingCheck
from serving import tf_serving_ops
from serving.servability import ServingCheckError, check_saved_model

VOCAB = ["[UNK]", "a", "great", "film", "terrible", "service", "##s"]
CLASS_NAMES = ["negative", "positive"]
EXAMPLE_TEXTS = ["a great film", "terrible service", "", "films"]
# Per-token logits for (negative, positive): 'great' and 'film' lean positive, 'terrible' and
# 'service' negative, so the expected labels of the default example texts are known.
TOKEN_LOGITS = [[0.0, 0.0], [0.0, 0.0], [-1.0, 2.0], [0.0, 0.5], [2.0, -1.0], [0.5, 0.0],
                [0.0, 0.0]]


class ToyClassifier(tf.Module):
    """Raw texts -> regex split -> WordPiece ids -> summed token logits -> 2-class softmax.

    trim_tokens adds tensorflow_text's RoundRobinTrimmer (op TFText>RoundRobinTrim);
    sigmoid_scores returns per-class sigmoids, whose rows do not sum to 1.
    """

    def __init__(self, trim_tokens=False, sigmoid_scores=False):
        super().__init__()
        self._trim_tokens, self._sigmoid_scores = trim_tokens, sigmoid_scores
        self._vocab_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                VOCAB, tf.range(len(VOCAB), dtype=tf.int64)), default_value=-1)
        self._wordpiece = tf_text.WordpieceTokenizer(
            self._vocab_table, token_out_type=tf.int64, unknown_token="[UNK]")
        self._trimmer = tf_text.RoundRobinTrimmer(max_seq_length=8)
        self._token_logits = tf.Variable(TOKEN_LOGITS)  # weights, as a trained model has
        self._class_names = tf.constant(CLASS_NAMES)

    def classify(self, texts):
        words = tf_text.regex_split(tf.strings.lower(texts), r"\s+")
        ids = self._wordpiece.tokenize(words).merge_dims(-2, -1)
        if self._trim_tokens:
            ids = self._trimmer.trim([ids])[0]
        logits = tf.reduce_sum(tf.gather(self._token_logits, ids), axis=1)
        probabilities = tf.sigmoid(logits) if self._sigmoid_scores else tf.nn.softmax(logits)
        return {
            "probabilities": probabilities,
            "label": tf.gather(self._class_names, tf.argmax(probabilities, axis=-1)),
            "classes": tf.tile(self._class_names[tf.newaxis], [tf.shape(texts)[0], 1]),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_text(self, text):
        return self.classify(text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_sentence(self, sentence):
        return self.classify(sentence)


def save_model_artifact(uri, input_name="text", **options):
    """A TFX Model artifact directory: the SavedModel under <uri>/Format-Serving."""
    module = ToyClassifier(**options)
    signature = module.serve_text if input_name == "text" else module.serve_sentence
    tf.saved_model.save(module, os.path.join(uri, "Format-Serving"),
                        signatures={"serving_default": signature})
    return str(uri)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "servable": save_model_artifact(root / "servable"),
        "unlinked_op": save_model_artifact(root / "unlinked_op", trim_tokens=True),
        "no_text_input": save_model_artifact(root / "no_text_input", input_name="sentence"),
        "probabilities_not_summing_to_1": save_model_artifact(
            root / "sigmoid", sigmoid_scores=True),
    }


def serving_dir(model_uri):
    return os.path.join(model_uri, "Format-Serving")


def run_check_pipeline(tmp_path, model_uri):
    """Importer(Model) -> ServingCheck -> Pusher on LocalDagRunner; returns the MLMD config."""
    model = tfx.dsl.Importer(source_uri=model_uri, artifact_type=standard_artifacts.Model
                             ).with_id("ModelImporter")
    check = ServingCheck(model=model.outputs["result"],
                         example_texts=EXAMPLE_TEXTS)
    pusher = tfx.components.Pusher(
        model=model.outputs["result"], infra_blessing=check.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=str(tmp_path / "serving"))))
    metadata_config = metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite"))
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="serving_check_test", pipeline_root=str(tmp_path / "root"),
        components=[model, check, pusher], metadata_connection_config=metadata_config))
    return metadata_config


def infra_blessings(metadata_config):
    with metadata.Metadata(metadata_config) as store:
        return [artifact_utils.deserialize_artifact(
                    store.store.get_artifact_types_by_id([mlmd.type_id])[0], mlmd)
                for mlmd in store.store.get_artifacts_by_type(
                    standard_artifacts.InfraBlessing.TYPE_NAME)]


def test_servable_model_is_blessed_through_tfx_and_pushed(models, tmp_path):
    metadata_config = run_check_pipeline(tmp_path, models["servable"])

    [blessing] = infra_blessings(metadata_config)
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_string_custom_property("tf_serving_release") == "2.16.1"
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_BLESSED"))
    with open(os.path.join(blessing.uri, "serving_check.json")) as handle:
        report = json.load(handle)
    assert report["non_core_ops"] == ["RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"]
    assert {"StatefulPartitionedCall", "Softmax", "LookupTableFindV2"} <= set(report["ops"])
    assert report["unsupported_ops"] == [] and report["problems"] == []
    assert report["signature"]["inputs"] == {
        "text": {"dtype": "DT_STRING", "shape": [-1], "dense": True}}
    predictions = {p["text"]: p for p in report["sample_predictions"]}
    assert list(predictions) == EXAMPLE_TEXTS  # the component's example_texts were used
    assert [predictions[text]["label"] for text in ["a great film", "terrible service",
                                                    "films"]] == ["positive", "negative",
                                                                  "positive"]
    assert predictions[""]["probabilities"] == [0.5, 0.5]
    assert predictions[""]["classes"] == CLASS_NAMES
    # The standard Pusher accepted the InfraBlessing and pushed the SavedModel.
    pushed = [os.path.join(root, name) for root, _, names in os.walk(tmp_path / "serving")
              for name in names if name == "saved_model.pb"]
    assert len(pushed) == 1


def test_op_the_model_server_does_not_link_fails_naming_op_release_and_source(models, tmp_path):
    """Called the way TFX calls the executor; the blessing directory says NOT blessed."""
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    model = standard_artifacts.Model()
    model.uri = models["unlinked_op"]

    with pytest.raises(ServingCheckError) as raised:
        serving_check.Executor().Do({"model": [model]}, {"blessing": [blessing]}, {})

    message = str(raised.value)
    assert "'TFText>RoundRobinTrim'" in message
    assert "stock TensorFlow Serving 2.16.1 does not link in" in message
    assert "Op type not registered" in message
    assert "tensorflow/serving tensorflow_serving/model_servers/BUILD" in message
    assert "not pushed" in message
    # Only the unlinked op is named: the tensorflow_text ops the server links are fine.
    assert "WordpieceTokenizeWithOffsets" not in message
    assert raised.value.report["unsupported_ops"] == ["TFText>RoundRobinTrim"]
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_NOT_BLESSED"))
    assert not os.path.exists(os.path.join(blessing.uri, "INFRA_BLESSED"))


def test_signature_without_text_input_fails_naming_the_input(models):
    with pytest.raises(ServingCheckError) as raised:
        check_saved_model(serving_dir(models["no_text_input"]))
    message = str(raised.value)
    assert ("signature 'serving_default' must take exactly one input, 'text' (a 1-D tf.string "
            "tensor of raw texts); it takes ['sentence']") in message
    assert "fails the serving check (stock TensorFlow Serving 2.16.1" in message


def test_probabilities_not_summing_to_one_fail_naming_text_and_sum(models):
    with pytest.raises(ServingCheckError) as raised:
        check_saved_model(serving_dir(models["probabilities_not_summing_to_1"]),
                          texts=["a great film", "terrible service"])
    message = str(raised.value)
    assert "'probabilities' for 'a great film' is" in message
    assert "expected probabilities in [0, 1] summing to 1 within 0.001" in message
    assert raised.value.report["sample_predictions"] == []


def test_allow_list_keeps_the_ops_the_model_server_links_and_not_the_newer_ones():
    ops = tf_serving_ops.TF_SERVING_CUSTOM_OPS
    # Linked since TF Serving picked up TF Text 2.11+ (tensorflow/serving issue #2064).
    assert {"WordpieceTokenizeWithOffsets", "RegexSplitWithOffsets", "NormalizeUTF8",
            "FastWordpieceTokenizeWithOffsets", "FastBertNormalize"} <= ops
    # Added to TF Text after the 2.12.1 that TF Serving 2.16.1 links.
    assert not {"TFText>RoundRobinTrim", "TFText>RoundRobinGenerateMasks",
                "TFText>Utf8Binarize"} & ops
    assert tf_serving_ops.unsupported_op_problems(["NormalizeUTF8"]) == []


def test_example_texts_must_be_a_non_empty_list_of_strings(tmp_path):
    with pytest.raises(ValueError, match="non-empty list of strings"):
        check_saved_model(str(tmp_path), texts=[])


def test_directory_without_saved_model_fails_before_starting_subprocesses(tmp_path):
    with pytest.raises(ServingCheckError, match="there is no SavedModel"):
        check_saved_model(str(tmp_path))
