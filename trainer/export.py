"""The serving SavedModel: raw text in, class probabilities and label names out.

Serving needs TensorFlow and the tensorflow_text ops only, no Python tokenizer. Signatures:

* `serving_default`: `text` (string [batch]) -> `probabilities` (float32 [batch, classes]),
  `label` (string [batch], the most probable label name), `classes` (string [batch, classes]);
* `serving_examples`: serialized tf.Examples (raw features) -> the same outputs (TFMA,
  BulkInferrer);
* `eval_features`: serialized tf.Examples -> the class index of the label and the token-length
  bucket, for TFMA's labels and slices.

How a call runs (issue 13: what made a TF call cost ~8 ms more than ONNX Runtime's):

* Tokenization is the Transform graph's tokenizer (preprocessing/tokenization.py), built once in
  `ServingModule.__init__` from the same checkpoint settings, so its 30,522-entry WordPiece
  table and the label table are module attributes, initialized once by the SavedModel's init
  op: no signature's function holds a table-initialization op (`table_init_ops` lists them;
  the Transform layer would re-run its table's import op in every call). The export checks
  that this tokenizer gives the Transform graph's ids on probe texts (`TokenizationSkewError`).
* The texts of a call are sorted by token count and run through the encoder in groups of
  `group_size` rows, each padded to the next multiple of 8 tokens: a batch of short and long
  texts is not padded to its longest, and the encoder sees a bounded set of shapes
  (group rows 1, 2, 4, ... group_size x lengths 8, 16, ... max_seq_length).
* With `xla` the encoder is compiled by XLA (`jit_compile`): one fused program per shape
  instead of ~700 executor ops. TF Serving runs it with `--xla_cpu_compilation_enabled=true`
  (serving/deploy/docker-compose.yml). The weights stay variables: freezing them into graph
  constants made single-sentence calls ~1.5 ms faster, but every XLA program (one per shape)
  then held its own copy of the weights, and a server ran out of 24 GB of memory.
* `precision="bfloat16"`: the encoder is a copy of the classifier with bfloat16 weights and
  arithmetic (saved next to the float32 weights, which warm starts read), which CPUs with
  AVX512-BF16 or AMX run about twice as fast. Such a model also has a function (not a
  signature) `FLOAT32_REFERENCE_FUNCTION`: the float32 weights' probabilities on serialized
  examples, with which the ServingCheck measures the variant's agreement on every push.

The export also writes TF Serving's warm-up file, `assets.extra/tf_serving_warmup_requests`
(serving/warmup.py): one `serving_default` request per encoder shape (`warmup_batches`), which
the model server replays before the version takes traffic.

The options the model was exported with are stored in `assets.extra/serving_options.json`
(TF Serving ignores assets.extra except for the warm-up file) and returned by
`read_serving_options`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope

from preprocessing.features import (INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS, LABEL,
                                    LABEL_VOCABULARY, LENGTH_BUCKET)
from preprocessing.preprocessing import dense_strings, length_buckets
from preprocessing.tokenization import BertTokenizerGraph
from serving.contract import (CLASSES, EVAL_FEATURES_SIGNATURE, EXAMPLES_SIGNATURE,
                              FLOAT32_REFERENCE_FUNCTION, PREDICTED_LABEL, PROBABILITIES,
                              SERVING_OPTIONS_FILE, SERVING_SIGNATURE, TEXT_INPUT)
from serving.warmup import write_warmup_requests

PRECISIONS = ("float32", "bfloat16")
# Ops that fill a lookup table: in a signature's function they run on every call.
TABLE_INIT_OPS = frozenset({"InitializeTable", "InitializeTableV2", "InitializeTableFromTextFile",
                            "InitializeTableFromTextFileV2", "InitializeTableFromDataset",
                            "LookupTableImport", "LookupTableImportV2"})
TOKEN_BUCKET = 8  # encoder inputs are padded to a multiple of this many tokens
# Texts on which the serving tokenizer must give the Transform graph's ids (export check).
PROBE_TEXTS = (
    "", "great product", "An UNEXPECTED, twisted ending!!", "naïve café résumé – Ünïcödé",
    "tabs\tand\nnewlines\r here", "zero\u200bwidth and \ufffd replacement", "日本語のテキスト 中文",
    "supercalifragilisticexpialidocious" * 4, "emoji 😀 and ß", " ".join(["long text"] * 100))


class TokenizationSkewError(RuntimeError):
    """The export's tokenizer does not reproduce the Transform graph's token ids."""


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    """How the served encoder runs (trainer/config.py's serving_* settings)."""

    precision: str = "float32"
    xla: bool = False
    group_size: int = 8  # rows per encoder call; a power of two

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"serving precision must be one of {PRECISIONS}, "
                             f"not {self.precision!r}")
        if self.group_size < 1 or self.group_size & (self.group_size - 1):
            raise ValueError(f"serving group size must be a power of two, not {self.group_size}")

    def to_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def _group_rows(count: tf.Tensor, group_size: int) -> tf.Tensor:
    """Rows an encoder call gets for `count` texts: the next power of two, up to group_size."""
    sizes = tf.constant([2 ** power for power in range(group_size.bit_length())], tf.int32)
    return tf.gather(sizes, tf.searchsorted(sizes, tf.reshape(count, [1]), side="left"))[0]


class _Untracked:
    """Holds a tf.function the signatures call, out of sight of the SavedModel's object graph.

    tf.saved_model.save lists every tf.function attribute of a saved object and traces it again
    for each input shape it was called with (the encoder: once per group shape, ~4 s of the
    MiniLM export); the signatures' graphs already hold what they call.
    """

    def __init__(self, function):
        self._function = function

    def __call__(self, *args):
        return self._function(*args)


def _encoder_function(encoder, xla: bool):
    """(ids, mask, type_ids) int32 [rows, width] -> float32 probabilities of `encoder`."""
    names = (INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS)
    return _Untracked(tf.function(
        lambda ids, mask, type_ids: tf.nn.softmax(tf.cast(
            encoder(dict(zip(names, (ids, mask, type_ids))), training=False), tf.float32),
            axis=-1),
        jit_compile=xla, autograph=False))


class ServingModule(tf.Module):
    def __init__(self, classifier, tft_output: tft.TFTransformOutput, text_feature: str,
                 label_feature: str, tokenizer: BertTokenizerGraph,
                 options: ServingOptions = ServingOptions(), encoder_model=None):
        super().__init__(name="bert_text_classifier")
        # The same layers and weights, uncompiled: the SavedModel then holds no optimizer
        # slots or metric variables (which would triple its size). Kept for warm starts
        # (trainer/model.py reads its variables).
        self.classifier = keras.Model(classifier.inputs, classifier.outputs,
                                      name=classifier.name)
        self.tokenizer = tokenizer  # created here, eagerly: its table is a module resource
        self.options = options
        self._max_seq_length = tokenizer.max_seq_length
        self._raw_spec = tft_output.raw_feature_spec()
        self._text_feature = text_feature
        self._label_feature = label_feature
        self._example_spec = {name: spec for name, spec in self._raw_spec.items()
                              if name != label_feature}
        label_names = tft_output.vocabulary_by_name(LABEL_VOCABULARY)
        self._label_names = tf.constant(label_names)
        self.label_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(label_names), tf.range(len(label_names), dtype=tf.int64)),
            default_value=-1)
        # The model the signatures run: the classifier itself, or its copy in the serving
        # precision (bfloat16 weights), tracked so that its variables are saved too.
        if encoder_model is not None:
            self.serving_classifier = encoder_model
        encoder = encoder_model if encoder_model is not None else self.classifier
        self._encode = _encoder_function(encoder, options.xla)
        if encoder_model is not None:
            reference = _encoder_function(self.classifier, xla=False)
            setattr(self, FLOAT32_REFERENCE_FUNCTION, tf.function(
                lambda examples: self._example_probabilities(examples, reference),
                input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                autograph=False))

    def _raw_text(self, text: tf.Tensor):
        """Shapes a [batch] string tensor the way the raw schema declares the text feature."""
        spec = self._raw_spec[self._text_feature]
        if isinstance(spec, tf.io.FixedLenFeature):
            return tf.reshape(text, [-1, *spec.shape])
        return tf.sparse.from_dense(tf.reshape(text, [-1, 1]))

    def _example_probabilities(self, examples: tf.Tensor, encode) -> tf.Tensor:
        features = tf.io.parse_example(examples, self._example_spec)
        return self._probabilities(dense_strings(features[self._text_feature]), encode)

    def _probabilities(self, texts: tf.Tensor, encode) -> tf.Tensor:
        """[batch] strings -> float32 [batch, classes], encoding length-sorted groups."""
        tokens = self.tokenizer(texts)
        ids, type_ids = tokens["input_ids"], tokens["input_type_ids"]
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        count = tf.shape(lengths)[0]
        order = tf.argsort(lengths, stable=True)
        group_size = self.options.group_size
        groups = (count + group_size - 1) // group_size
        classes = tf.shape(self._label_names)[0]
        outputs = tf.zeros([0, classes], tf.float32)
        positions = tf.zeros([0], tf.int32)

        def body(group, outputs, positions):
            rows = order[group * group_size: tf.minimum((group + 1) * group_size, count)]
            taken = tf.shape(rows)[0]
            padded_rows = _group_rows(taken, group_size)
            longest = tf.reduce_max(tf.gather(lengths, rows))
            width = tf.minimum((longest + TOKEN_BUCKET - 1) // TOKEN_BUCKET * TOKEN_BUCKET,
                               tf.maximum(self._max_seq_length, longest))
            width = tf.maximum(width, 1)
            shape = tf.stack([padded_rows, width])
            group_ids = tf.cast(tf.gather(ids, rows).to_tensor(shape=shape), tf.int32)
            group_types = tf.cast(tf.gather(type_ids, rows).to_tensor(shape=shape), tf.int32)
            group_lengths = tf.pad(tf.gather(lengths, rows), [[0, padded_rows - taken]],
                                   constant_values=1)
            mask = tf.sequence_mask(group_lengths, width, dtype=tf.int32)
            probabilities = encode(group_ids, mask, group_types)[:taken]
            return (group + 1, tf.concat([outputs, probabilities], 0),
                    tf.concat([positions, rows], 0))

        _, outputs, positions = tf.while_loop(
            lambda group, *_: group < groups, body, (tf.constant(0), outputs, positions),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None]),
                              tf.TensorShape([None])))
        # Back to the callers' order: outputs[i] belongs to text positions[i].
        return tf.scatter_nd(positions[:, tf.newaxis], outputs, tf.stack([count, classes]))

    def _predict(self, texts: tf.Tensor) -> Dict[str, tf.Tensor]:
        probabilities = self._probabilities(texts, self._encode)
        batch = tf.shape(probabilities)[0]
        return {
            PROBABILITIES: probabilities,
            PREDICTED_LABEL: tf.gather(self._label_names, tf.argmax(probabilities, axis=-1)),
            CLASSES: tf.tile(self._label_names[tf.newaxis, :], [batch, 1]),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)],
                 autograph=False)
    def serve_text(self, text):
        return self._predict(dense_strings(self._raw_text(text)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def serve_examples(self, examples):
        features = tf.io.parse_example(examples, self._example_spec)
        return self._predict(dense_strings(features[self._text_feature]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def eval_features(self, examples):
        features = tf.io.parse_example(examples, self._raw_spec)
        tokens = self.tokenizer(dense_strings(features[self._text_feature]))
        label = self.label_table.lookup(dense_strings(features[self._label_feature]))
        return {LABEL: label, LENGTH_BUCKET: length_buckets(tokens[INPUT_IDS].row_lengths())}


def check_tokenization(tokenizer: BertTokenizerGraph, tft_output: tft.TFTransformOutput,
                       text_feature: str, texts: Sequence[str] = PROBE_TEXTS) -> None:
    """Raises TokenizationSkewError unless `tokenizer` gives Transform's ids on `texts`."""
    spec = tft_output.raw_feature_spec()
    text = tf.constant(list(texts))
    if isinstance(spec[text_feature], tf.io.FixedLenFeature):
        raw = tf.reshape(text, [-1, *spec[text_feature].shape])
    else:
        raw = tf.sparse.from_dense(tf.reshape(text, [-1, 1]))
    transformed = tft_output.transform_features_layer()({text_feature: raw})
    expected = tf.sparse.to_dense(transformed[INPUT_IDS]).numpy().tolist()
    got = tokenizer(text)[INPUT_IDS].to_tensor().numpy().tolist()
    width = max([len(row) for row in expected + got] + [0])
    pad = lambda rows: [list(row) + [0] * (width - len(row)) for row in rows]  # noqa: E731
    mismatched = [t for t, a, b in zip(texts, pad(expected), pad(got)) if a != b]
    if mismatched:
        raise TokenizationSkewError(
            "the serving tokenizer's ids differ from the Transform graph's for "
            f"{len(mismatched)} probe texts, e.g. {mismatched[0]!r}: was the model trained "
            "with another checkpoint's vocabulary or max_seq_length?")


def export_serving_model(classifier, tft_output: tft.TFTransformOutput, text_feature: str,
                         label_feature: str, export_dir: str,
                         tokenizer: Optional[BertTokenizerGraph] = None,
                         options: ServingOptions = ServingOptions(),
                         encoder_model=None) -> None:
    """Writes the serving SavedModel. `tokenizer`: the Transform graph's (same checkpoint and
    max_seq_length), checked against it; `encoder_model`: the classifier rebuilt in the serving
    precision with the same weights (trainer/model.py: serving_copy), default `classifier`."""
    if tokenizer is None:
        raise ValueError("export_serving_model needs the Transform graph's tokenizer")
    check_tokenization(tokenizer, tft_output, text_feature)
    module = ServingModule(classifier, tft_output, text_feature, label_feature, tokenizer,
                           options, encoder_model)
    # The functions, not concrete functions: tf.saved_model.save traces every function of the
    # object graph again in its own context, so tracing them here first would trace each twice
    # (~4 s of the MiniLM export).
    signatures = {
        SERVING_SIGNATURE: module.serve_text,
        EXAMPLES_SIGNATURE: module.serve_examples,
        EVAL_FEATURES_SIGNATURE: module.eval_features,
    }
    # Without save_traces, Keras does not trace every layer's call for the SavedModel (48.8 s
    # of the 54.8 s the demo's MiniLM export took; 6.1 s without): nothing loads the classifier
    # as a callable, only its variables (warm starts, trainer/model.py) and the signatures.
    with keras_option_scope(save_traces=False):
        tf.saved_model.save(module, export_dir, signatures=signatures)
    write_serving_options(export_dir, options, tokenizer.max_seq_length)
    write_warmup_requests(export_dir, warmup_batches(tokenizer.max_seq_length, options.group_size))


def warmup_batches(max_seq_length: int, group_size: int) -> List[List[str]]:
    """One batch of texts per encoder shape the signatures can run (rows 1, 2, 4, ...
    group_size x widths 8, 16, ..., max_seq_length), for the warm-up file TF Serving replays
    before a version takes traffic (serving/warmup.py): with XLA, each shape is a compilation.

    A text of n one-letter words is n + 2 tokens with [CLS] and [SEP]: "a" is one wordpiece, or
    one [UNK] in a vocabulary without it."""
    widths = sorted({min(-(-length // TOKEN_BUCKET) * TOKEN_BUCKET, max_seq_length)
                     for length in range(2, max_seq_length + 1)})
    rows = [2 ** power for power in range(group_size.bit_length())]
    return [[" ".join(["a"] * (width - 2))] * count for count in rows for width in widths]


def write_serving_options(export_dir: str, options: ServingOptions,
                          max_seq_length: int) -> None:
    path = os.path.join(export_dir, SERVING_OPTIONS_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(json.dumps({**options.to_dict(), "max_seq_length": max_seq_length},
                                indent=1, sort_keys=True) + "\n")


def read_serving_options(saved_model_dir: str) -> Optional[ServingOptions]:
    """The options a model was exported with; None for a model exported before they existed."""
    path = os.path.join(saved_model_dir, SERVING_OPTIONS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        values = json.load(handle)
    names = {field.name for field in dataclasses.fields(ServingOptions)}
    return ServingOptions(**{name: value for name, value in values.items() if name in names})


def read_max_seq_length(saved_model_dir: str) -> Optional[int]:
    """The tokenizer's max_seq_length recorded with the serving options, if any."""
    path = os.path.join(saved_model_dir, SERVING_OPTIONS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle).get("max_seq_length")


def table_init_ops(saved_model_dir: str) -> Dict[str, List[str]]:
    """For each signature: the table-initialization ops its function (and what it calls) holds,
    as 'op_type (node name in function)'. An empty list is what a fast signature has."""
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as handle:
        proto.ParseFromString(handle.read())
    meta_graph = next(graph for graph in proto.meta_graphs
                      if "serve" in graph.meta_info_def.tags)
    library = {function.signature.name: function
               for function in meta_graph.graph_def.library.function}
    nodes = {node.name: node for node in meta_graph.graph_def.node}

    def called(node) -> List[str]:
        names = [node.op] if node.op in library else []
        for value in node.attr.values():
            if value.HasField("func"):
                names.append(value.func.name)
            names.extend(function.name for function in value.list.func)
        return names

    def reachable(function_names: List[str]) -> List[str]:
        seen, stack = [], list(function_names)
        while stack:
            name = stack.pop()
            if name in seen or name not in library:
                continue
            seen.append(name)
            for node in library[name].node_def:
                stack.extend(called(node))
        return seen

    found: Dict[str, List[str]] = {}
    for name, signature in meta_graph.signature_def.items():
        if name.startswith("__"):
            continue  # __saved_model_init_op: where table initialization belongs
        output_nodes = {tensor.name.split(":")[0] for tensor in signature.outputs.values()}
        functions = reachable([function for node_name in output_nodes if node_name in nodes
                               for function in called(nodes[node_name])])
        found[name] = sorted(f"{node.op} ({function}/{node.name})" for function in functions
                             for node in library[function].node_def
                             if node.op in TABLE_INIT_OPS)
    return found
