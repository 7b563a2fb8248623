"""The names Transform's output is known by, shared by everything that reads it.

Transformed feature names (the Trainer's input and TFMA's labels and slices), the label
vocabulary's file name, the token-length buckets, and the `custom_config` keys through which
the pipeline hands Transform its settings. No imports: the pipeline definition, the Trainer, the
Evaluator's config and the run report use these names without loading TensorFlow Transform.
"""

# Transformed features: variable-length token ids, mask and type ids, the class index.
INPUT_IDS = "input_ids"
INPUT_MASK = "input_mask"
INPUT_TYPE_IDS = "input_type_ids"
LABEL = "label"
# The label vocabulary in the transform graph: class index -> label name.
LABEL_VOCABULARY = "labels"
# Token-length bucket of each text (with [CLS]/[SEP]), for evaluation slices.
LENGTH_BUCKET = "length_bucket"
LENGTH_BUCKET_BOUNDS = (16, 32, 64)
LENGTH_BUCKET_NAMES = ("<=16", "17-32", "33-64", ">64")

# Text statistics: one value per text, written beside the model inputs so that TFDV's
# statistics of the transformed examples describe the tokenized text (TextStatisticsGen, the
# text bounds, drift between spans, training/serving skew). The Trainer reads none of them.
TEXT_LENGTH = "text_length"  # characters of the raw text
TOKEN_COUNT = "token_count"  # WordPiece tokens with [CLS] and [SEP], before truncation
TRUNCATED = "truncated"  # 1 when token_count > max_seq_length (the text was cut), else 0
UNKNOWN_TOKEN_SHARE = "unknown_token_share"  # share of the text's WordPiece tokens that are [UNK]
LABEL_NAME = "label_name"  # the raw label, so label drift does not depend on class indices
TEXT_STATISTICS_FEATURES = (TEXT_LENGTH, TOKEN_COUNT, TRUNCATED, UNKNOWN_TOKEN_SHARE, LABEL_NAME)

# custom_config keys of Transform (set by pipeline/pipeline.py; the checkpoint and the label
# values are added at run time by components/checkpoint_inputs.py).
CHECKPOINT_KEY = "pretrained_checkpoint"
TEXT_FEATURE_KEY = "text_feature"
LABEL_FEATURE_KEY = "label_feature"
LABEL_VALUES_KEY = "label_values"
MAX_SEQ_LENGTH_KEY = "max_seq_length"
