"""The serving contract of every exported model: signature and tensor names.

Shared by the exporter (trainer/export.py), the ServingCheck that verifies it, and the clients;
no heavy imports, so clients can use it with TensorFlow alone.
"""
SERVING_SIGNATURE = "serving_default"  # raw text in
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Examples in (TFMA, BulkInferrer)
EVAL_FEATURES_SIGNATURE = "eval_features"  # label index and slicing features for TFMA
TEXT_INPUT = "text"  # 1-D tf.string: a batch of raw texts
PROBABILITIES = "probabilities"  # float [batch, classes], rows sum to 1
PREDICTED_LABEL = "label"  # string [batch]: the most probable class name
CLASSES = "classes"  # string [batch, classes]: the class names, in probability order
