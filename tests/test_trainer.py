"""The Trainer (`trainer.task.run_fn`) for real on a tiny BERT: MirroredStrategy over two logical
CPU devices, and the exported serving SavedModel's contract in a fresh process.

run_fn gets a real TFX FnArgs over the data half's real output (see trainer_harness.py) and runs
in a subprocess. Multi-worker training: test_cloud_resources.py; resuming after a kill:
test_trainer_resume.py.
"""
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2

import trainer_harness
from preprocessing.features import LABEL_VOCABULARY

SIGNATURES = {"serving_default", "serving_examples", "eval_features"}


def signature_names(saved_model_dir):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as handle:
        proto.ParseFromString(handle.read())
    [meta_graph] = proto.meta_graphs
    return set(meta_graph.signature_def) - {"__saved_model_init_op"}


@pytest.mark.slow  # 80 s: a scale check (strategy selection is tested in test_distribution)
def test_mirrored_strategy_trains_on_two_logical_cpus_and_exports(trainer_inputs, tmp_path):
    config = trainer_inputs.train_config(tmp_path / "out", distribution="mirrored")
    fn_args = trainer_inputs.fn_args_spec(config, tmp_path / "run")
    process = trainer_harness.run_trainer(tmp_path / "trainer", fn_args, logical_cpus=2)

    assert "Distribution strategy: mirrored (requested mirrored)" in process.stderr
    report = process.strategy_report()  # run_fn's own log line
    assert (report["strategy"], report["replicas"]) == ("MirroredStrategy", 2), report
    assert (report["examples"], report["labels"], report["steps_per_epoch"]) == (330, 2, 10)
    result = process.result()
    assert len([d for d in result["logical_devices"] if "CPU" in d]) == 2
    [strategy] = result["strategies"]
    assert strategy["class"] == "MirroredStrategy" and strategy["num_replicas_in_sync"] == 2
    assert sorted(d.split("/")[-1] for d in strategy["worker_devices"]) == ["device:CPU:0",
                                                                            "device:CPU:1"]
    # Every step of the epoch ran (global batch 32), as the progress line says.
    assert "training: step 10/10" in process.stdout

    serving_dir = fn_args["serving_model_dir"]
    assert [export["export_dir"] for export in result["exports"]] == [serving_dir]
    assert trainer_harness.saved_models_under(tmp_path) == [pathlib.Path(serving_dir)]
    assert signature_names(serving_dir) == SIGNATURES
    assert os.listdir(os.path.join(serving_dir, "variables"))


@pytest.fixture(scope="module")
def default_run(trainer_inputs, tmp_path_factory):
    """One run_fn with the default strategy (this CPU machine's `auto`): its FnArgs, process."""
    directory = tmp_path_factory.mktemp("default_run")
    config = trainer_inputs.train_config(directory / "out", distribution="auto")
    fn_args = trainer_inputs.fn_args_spec(config, directory / "run")
    process = trainer_harness.run_trainer(directory / "trainer", fn_args)
    assert process.result()["strategies"][0]["class"] == "_DefaultDistributionStrategy"
    return fn_args, process


# Runs in a fresh interpreter that imports only tensorflow and tensorflow_text (`python -I`,
# cwd outside the repository): what a TensorFlow Serving-like consumer has.
SERVING_CLIENT = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops of the transform graph)

model = tf.saved_model.load(sys.argv[1])
texts = [b"great product", b"awful", b""]
labelled = [(b"great product", b"positive"), (b"awful", b"negative"),
            (b" ".join([b"the movie was great"] * 10), b"positive")]
mixed = [b" ".join([b"word"] * n) for n in (3, 40, 1, 12, 0, 25, 7, 2, 30, 5, 18)]

def example(text, label=None):
    feature = {"text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text]))}
    if label is not None:
        feature["label"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[label]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

def call(name, **inputs):
    outputs = model.signatures[name](**inputs)
    return {key: {"dtype": value.dtype.name, "value": value.numpy().tolist()}
            for key, value in outputs.items()}

def input_names(name):
    return sorted(model.signatures[name].structured_input_signature[1])

[examples_input] = input_names("serving_examples")
[eval_input] = input_names("eval_features")
out = {
    "signatures": sorted(model.signatures),
    "serving_default_inputs": input_names("serving_default"),
    "serving_default": call("serving_default", text=tf.constant(texts)),
    "serving_examples": call("serving_examples", **{
        examples_input: tf.constant([example(text) for text in texts])}),
    "eval_features": call("eval_features", **{
        eval_input: tf.constant([example(text, label) for text, label in labelled])}),
    # Length-sorted groups inside the model: a batch of mixed lengths answers each text as
    # that text alone does, in the caller's order.
    "mixed_batch": model.signatures["serving_default"](text=tf.constant(mixed))[
        "probabilities"].numpy().tolist(),
    "mixed_alone": [model.signatures["serving_default"](text=tf.constant([text]))[
        "probabilities"].numpy()[0].tolist() for text in mixed],
    "modules": sorted({name.split(".")[0] for name in sys.modules}
                      & {"tensorflow_transform", "transformers", "tfx", "apache_beam"}),
}
print(json.dumps(out, default=lambda value: value.decode("utf-8")))
"""


@pytest.fixture(scope="module")
def served(default_run, tmp_path_factory):
    """The SERVING_CLIENT's view of the exported model: outputs of the three signatures."""
    fn_args, _ = default_run
    cwd = tmp_path_factory.mktemp("client")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_USE_LEGACY_KERAS", None)
    result = subprocess.run([sys.executable, "-I", "-c", SERVING_CLIENT,
                             fn_args["serving_model_dir"]], capture_output=True, text=True,
                            cwd=str(cwd), env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_export_serves_raw_text_in_a_process_without_transform_or_transformers(
        served, trainer_inputs):
    labels = [label.decode() for label in tft.TFTransformOutput(
        trainer_inputs.transform_output).vocabulary_by_name(LABEL_VOCABULARY)]
    assert labels == ["negative", "positive"]  # the schema's label domain, in its order
    assert served["modules"] == []  # no tensorflow_transform, transformers, tfx (nor beam)
    assert set(served["signatures"]) == SIGNATURES
    assert served["serving_default_inputs"] == ["text"]

    outputs = served["serving_default"]
    probabilities = np.array(outputs["probabilities"]["value"])
    assert outputs["probabilities"]["dtype"] == "float32"
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()
    assert outputs["classes"]["value"] == [labels] * 3
    assert set(outputs["label"]["value"]) <= {"negative", "positive"}
    assert outputs["label"]["value"] == [labels[i] for i in probabilities.argmax(axis=1)]


def test_serving_examples_matches_serving_default_on_raw_tf_examples(served):
    by_text, by_example = served["serving_default"], served["serving_examples"]
    np.testing.assert_allclose(np.array(by_example["probabilities"]["value"]),
                               np.array(by_text["probabilities"]["value"]), rtol=0, atol=1e-6)
    assert by_example["label"]["value"] == by_text["label"]["value"]
    assert by_example["classes"]["value"] == by_text["classes"]["value"]


def test_eval_features_gives_label_index_and_length_bucket(served):
    features = served["eval_features"]
    assert features["label"]["dtype"] in ("int64", "int32")
    assert features["label"]["value"] == [1, 0, 1]  # positive, negative, positive
    assert features["length_bucket"]["dtype"] == "string"
    # [CLS] great [UNK] [SEP] and [CLS] [UNK] [SEP]; 40 words truncated to max_seq_length 32.
    assert features["length_bucket"]["value"] == ["<=16", "<=16", "17-32"]


def test_serving_model_holds_no_training_state(default_run):
    fn_args, _ = default_run
    reader = tf.train.load_checkpoint(
        os.path.join(fn_args["serving_model_dir"], "variables", "variables"))
    names = list(reader.get_variable_to_shape_map())
    assert names
    assert [name for name in names if "optimizer" in name.lower()] == []


def test_warm_start_loads_every_weight_of_an_exported_model(default_run, trainer_inputs):
    from trainer import model
    fn_args, _ = default_run
    exported = fn_args["serving_model_dir"]
    reader = tf.train.load_checkpoint(os.path.join(exported, "variables", "variables"))
    exported_values = [reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
                       if name.startswith("classifier/")]
    fresh = model.build_classifier(trainer_inputs.checkpoint, num_labels=2)
    assert len(fresh.weights) == len(exported_values)

    def exported_matches(weight):
        return any(value.shape == weight.shape and np.array_equal(value, weight.numpy())
                   for value in exported_values)

    head = fresh.get_layer("classifier").kernel
    assert not exported_matches(head)  # freshly initialised
    model.warm_start(fresh, exported)
    assert all(exported_matches(weight) for weight in fresh.weights)

    # Another label count cannot reuse the head: a clear error.
    with pytest.raises(model.WarmStartError, match="cannot warm-start from"):
        model.warm_start(model.build_classifier(trainer_inputs.checkpoint, num_labels=3),
                         exported)


def test_a_base_model_whose_classes_are_in_another_order_is_not_warm_started_from(
        default_run, trainer_inputs):
    """Same label count, so every weight shape fits, but its head's rows are other classes."""
    import tensorflow_transform as tft
    from preprocessing.features import LABEL_VOCABULARY
    from trainer import model
    fn_args, _ = default_run
    exported = fn_args["serving_model_dir"]
    labels = [name.decode() for name in tft.TFTransformOutput(
        trainer_inputs.transform_output).vocabulary_by_name(LABEL_VOCABULARY)]
    assert len(labels) == 2
    model.check_base_model_classes(exported, labels)  # this run's order: accepted
    with pytest.raises(model.WarmStartError, match=re.escape(
            f"its classes {labels} are not this run's {labels[::-1]} in the same order")):
        model.check_base_model_classes(exported, labels[::-1])


def test_mixed_length_batch_answers_like_each_text_alone(served):
    np.testing.assert_allclose(np.array(served["mixed_batch"]), np.array(served["mixed_alone"]),
                               rtol=0, atol=1e-5)


def test_no_signature_initializes_a_table_and_serving_options_are_recorded(default_run):
    from trainer import export
    fn_args, _ = default_run
    serving_dir = fn_args["serving_model_dir"]
    assert export.table_init_ops(serving_dir) == {name: [] for name in SIGNATURES}
    options = export.read_serving_options(serving_dir)
    assert options == export.ServingOptions()  # float32, XLA: the training section's defaults
    assert export.read_max_seq_length(serving_dir) == 32


def test_table_init_ops_finds_a_table_filled_inside_a_signature(tmp_path):
    from trainer import export

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(["a"], [1]), default_value=0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def refill(self, keys):
            # What a table created inside a traced function does on every call.
            tf.raw_ops.LookupTableImportV2(table_handle=self.table.resource_handle,
                                           keys=tf.constant(["a"]), values=tf.constant([1]))
            return {"ids": self.table.lookup(keys)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def lookup(self, keys):
            return {"ids": self.table.lookup(keys)}

    module = Module()
    tf.saved_model.save(module, str(tmp_path), signatures={
        "refill": module.refill.get_concrete_function(),
        "lookup": module.lookup.get_concrete_function()})
    found = export.table_init_ops(str(tmp_path))
    assert found["lookup"] == []
    assert [entry.split(" ")[0] for entry in found["refill"]] == ["LookupTableImportV2"]


def test_serving_options_are_checked():
    from trainer import export
    with pytest.raises(ValueError, match="precision"):
        export.ServingOptions(precision="float16")
    with pytest.raises(ValueError, match="power of two"):
        export.ServingOptions(group_size=6)


def test_export_refuses_a_tokenizer_that_differs_from_the_transform_graphs(trainer_inputs):
    from preprocessing.checkpoint import read_tokenizer_settings
    from preprocessing.tokenization import BertTokenizerGraph
    from trainer import export
    tft_output = tft.TFTransformOutput(trainer_inputs.transform_output)
    settings = read_tokenizer_settings(trainer_inputs.checkpoint)
    export.check_tokenization(BertTokenizerGraph(settings, 32), tft_output, "text")
    with pytest.raises(export.TokenizationSkewError, match="max_seq_length"):
        export.check_tokenization(BertTokenizerGraph(settings, 16), tft_output, "text")


def test_mean_pooling_averages_the_texts_tokens_only_and_survives_the_serving_copy(
        trainer_inputs):
    from trainer import model
    pooled = model.MeanPooling()(tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]]),
                                 tf.constant([[1, 1, 0]]))
    np.testing.assert_allclose(pooled.numpy(), [[2.0, 3.0]])  # the padded 100s are left out
    classifier = model.build_classifier(trainer_inputs.checkpoint, 2, dropout=0.0,
                                        pooling="mean")
    ids = tf.constant([[2, 5, 6, 3]], tf.int32)
    padded = tf.constant([[2, 5, 6, 3, 0, 0, 0, 0]], tf.int32)

    def logits(network, ids):
        return network({"input_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
                        "input_type_ids": tf.zeros_like(ids)}, training=False).numpy()

    np.testing.assert_allclose(logits(classifier, ids), logits(classifier, padded), atol=1e-5)
    copy = model.serving_copy(classifier, trainer_inputs.checkpoint, "float32")
    assert model.pooling_of(copy) == "mean"
    np.testing.assert_allclose(logits(copy, padded), logits(classifier, padded), atol=1e-6)


def test_layer_wise_decay_scales_each_layers_first_step_by_its_depth(tiny_bert):
    """One Adam step from the same weights, with and without layer-wise decay: each variable
    moves by its depth's factor (head 1, encoder layer 0 d, embeddings d**2 with the tiny
    BERT's one layer), through the dense update and the embeddings' sparse one."""
    from trainer import model, optimizer
    decay = 0.5
    batch = {"input_ids": tf.constant([[2, 5, 6, 3], [2, 7, 3, 0]], tf.int32)}
    batch["input_mask"] = tf.cast(batch["input_ids"] > 0, tf.int32)
    batch["input_type_ids"] = tf.zeros_like(batch["input_ids"])
    labels = tf.constant([0, 1])

    def step_sizes(layer_lr_decay):
        tf.keras.utils.set_random_seed(7)
        classifier = model.build_classifier(str(tiny_bert), 2, dropout=0.0)
        before = [weight.numpy() for weight in classifier.trainable_weights]
        model.compile_classifier(classifier, 1e-3, train_steps=10, warmup_steps=0,
                                 weight_decay=0.01, jit_compile=False,
                                 layer_lr_decay=layer_lr_decay)
        classifier.train_on_batch(batch, labels)
        return {weight.name: np.abs(weight.numpy() - start) for weight, start
                in zip(classifier.trainable_weights, before)}

    plain, decayed = step_sizes(1.0), step_sizes(decay)
    layers = 1
    depths = set()
    for name, moved in plain.items():
        if "/key/bias" in name:
            continue  # softmax ignores a shift shared by all keys: its gradient is exactly 0
        depth = optimizer.depth_of(name, layers)
        depths.add(depth)
        touched = moved > 1e-7  # an embedding row no text used does not move at all
        assert touched.any(), name
        ratio = np.median(decayed[name][touched] / moved[touched])
        assert ratio == pytest.approx(decay ** (layers + 1 - depth), rel=0.05), name
    assert depths == {0, 1, 2}  # embeddings, the layer and the head were all seen
    from trainer.config import TrainingConfig
    with pytest.raises(ValueError, match="layer_lr_decay must be in"):
        TrainingConfig(layer_lr_decay=0.0)
