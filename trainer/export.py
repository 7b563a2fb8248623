"""The serving SavedModel: raw text in, class probabilities and label names out.

The Transform graph is embedded (its TF Transform layer), so serving needs TensorFlow and the
tensorflow_text ops only, no Python tokenizer. Signatures:

* `serving_default`: `text` (string [batch]) -> `probabilities` (float32 [batch, classes]),
  `label` (string [batch], the most probable label name), `classes` (string [batch, classes]);
* `serving_examples`: serialized tf.Examples (raw features) -> the same outputs (TFMA,
  BulkInferrer);
* `eval_features`: serialized tf.Examples -> the class index of the label and the token-length
  bucket, for TFMA's labels and slices.
"""
from __future__ import annotations

from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from preprocessing.features import (INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS, LABEL,
                                         LABEL_VOCABULARY, LENGTH_BUCKET)
from serving.contract import (CLASSES, EVAL_FEATURES_SIGNATURE, EXAMPLES_SIGNATURE,
                              PREDICTED_LABEL, PROBABILITIES, SERVING_SIGNATURE, TEXT_INPUT)



class ServingModule(tf.Module):
    def __init__(self, classifier, tft_output: tft.TFTransformOutput, text_feature: str,
                 label_feature: str):
        super().__init__(name="bert_text_classifier")
        # The same layers and weights, uncompiled: the SavedModel then holds no optimizer
        # slots or metric variables (which would triple its size).
        self.classifier = keras.Model(classifier.inputs, classifier.outputs,
                                      name=classifier.name)
        self.tft_layer = tft_output.transform_features_layer()
        self._raw_spec = tft_output.raw_feature_spec()
        self._text_feature = text_feature
        self._example_spec = {name: spec for name, spec in self._raw_spec.items()
                              if name != label_feature}
        self._label_names = tf.constant(tft_output.vocabulary_by_name(LABEL_VOCABULARY))

    def _raw_text(self, text: tf.Tensor):
        """Shapes a [batch] string tensor the way the raw schema declares the text feature."""
        spec = self._raw_spec[self._text_feature]
        if isinstance(spec, tf.io.FixedLenFeature):
            return tf.reshape(text, [-1, *spec.shape])
        return tf.sparse.from_dense(tf.reshape(text, [-1, 1]))

    def _predict(self, raw_features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        transformed = self.tft_layer(raw_features)
        inputs = {name: tf.cast(tf.sparse.to_dense(transformed[name]), tf.int32)
                  for name in (INPUT_IDS, INPUT_MASK, INPUT_TYPE_IDS)}
        probabilities = tf.nn.softmax(tf.cast(self.classifier(inputs, training=False),
                                              tf.float32), axis=-1)
        batch = tf.shape(probabilities)[0]
        return {
            PROBABILITIES: probabilities,
            PREDICTED_LABEL: tf.gather(self._label_names, tf.argmax(probabilities, axis=-1)),
            CLASSES: tf.tile(self._label_names[tf.newaxis, :], [batch, 1]),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
    def serve_text(self, text):
        return self._predict({self._text_feature: self._raw_text(text)})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        return self._predict(tf.io.parse_example(examples, self._example_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def eval_features(self, examples):
        transformed = self.tft_layer(tf.io.parse_example(examples, self._raw_spec))
        return {LABEL: transformed[LABEL], LENGTH_BUCKET: transformed[LENGTH_BUCKET]}


def export_serving_model(classifier, tft_output: tft.TFTransformOutput, text_feature: str,
                         label_feature: str, export_dir: str) -> None:
    module = ServingModule(classifier, tft_output, text_feature, label_feature)
    tf.saved_model.save(module, export_dir, signatures={
        SERVING_SIGNATURE: module.serve_text.get_concrete_function(),
        EXAMPLES_SIGNATURE: module.serve_examples.get_concrete_function(),
        EVAL_FEATURES_SIGNATURE: module.eval_features.get_concrete_function(),
    })
