"""The ops stock TensorFlow Serving links in beyond core TensorFlow, and where that list comes
from. A model using any other non-core op fails to load in the model server ("Op type not
registered"), so the ServingCheck refuses it (serving/servability.py).
"""
from __future__ import annotations

from typing import AbstractSet, List, Sequence

TF_SERVING_RELEASE = "2.16.1"

# The custom (non-core) ops that stock TensorFlow Serving 2.16.1 links into tensorflow_model_server.
#
# Where this comes from (GitHub tensorflow/serving and tensorflow/text, read through the code
# and issue search; derivation steps marked "inferred" were not read from the 2.16.1 tag itself):
# * tensorflow/serving, tensorflow_serving/model_servers/BUILD: SUPPORTED_TENSORFLOW_OPS, linked
#   into :server_lib, is "@org_tensorflow_text//tensorflow_text:ops_lib" plus TensorFlow
#   Decision Forests' inference ops (not listed here: this project never uses them, so a model
#   with them is rejected, which errs on the safe side).
# * tensorflow/serving, tensorflow_serving/workspace.bzl: org_tensorflow_text is pinned at
#   "text-2.12.1" (with third_party/tf_text/tftext.patch, which patches
#   fast_wordpiece_tokenizer.cc so that it compiles into the server). The pin moved to v2.12.0-rc0
#   in March 2023 (tensorflow/serving PR #2119) and was still v2.12.1 in February 2025
#   (tensorflow/serving PR #4057, "The embedded TensorFlow Text version is 2.12.1"), so the
#   2.16.1 release (2024) links TF Text 2.12.1: inferred from those dates.
# * The op names: the ops registered by the tensorflow-text 2.12.1 wheel from PyPI
#   (tensorflow_text/python/ops/_*.so), checked against the names the pinned tensorflow-text
#   2.16.1 registers. Inferred: that TF Text 2.12.1's ops_lib target links every one of these op
#   libraries. The ops_lib read in tensorflow/text tensorflow_text/BUILD (a later commit) links
#   all of them, and the Fast* ones were added before 2.12 (next point).
# * Fast* ops (FastWordpieceTokenizeWithOffsets, FastBertNormalize, FastSentencepiece*) ARE in:
#   tensorflow/serving issue #2064 ("Op type not registered 'FastBertNormalize'") was reported
#   against TF Serving 2.10 and closed once nightly (TF Text 2.11+) loaded such models; the
#   missing-op reports of that era do not apply to 2.16.1.
# * NOT in (present in the pinned tensorflow-text 2.16.1, absent from 2.12.1):
#   TFText>RoundRobinTrim and TFText>RoundRobinGenerateMasks (RoundRobinTrimmer; reported missing
#   in tensorflow/serving issue #2267 and PR #4057: "Op type not registered
#   'TFText>RoundRobinTrim'") and TFText>Utf8Binarize.
TF_SERVING_CUSTOM_OPS = frozenset({
    "CaseFoldUTF8",
    "ConstrainedSequence",
    "FastBertNormalize",
    "FastWordpieceTokenizeWithOffsets",
    "FindSourceOffsets",
    "MaxSpanningTree",
    "NormalizeUTF8",
    "NormalizeUTF8WithOffsetsMap",
    "PhraseTokenize",
    "RegexSplitWithOffsets",
    "SentenceFragments",
    "SentenceFragmentsV2",
    "SentencepieceDetokenizeOp",
    "SentencepieceIdToStringOp",
    "SentencepieceOp",
    "SentencepieceStringToIdOp",
    "SentencepieceTokenizeOp",
    "SentencepieceTokenizeWithOffsetsOp",
    "SentencepieceVocabSizeOp",
    "SplitMergeTokenizeWithOffsets",
    "TFText>BoiseTagsToOffsets",
    "TFText>ByteSplitByOffsets",
    "TFText>ByteSplitWithOffsets",
    "TFText>FastSentencepieceDetokenize",
    "TFText>FastSentencepieceTokenize",
    "TFText>FastWordpieceDetokenize",
    "TFText>NgramsStringJoin",
    "TFText>OffsetsToBoiseTags",
    "TFText>PhraseDetokenize",
    "TFText>WhitespaceTokenizeWithOffsetsV2",
    "TokenizerFromLogits",
    "UnicodeScriptTokenizeWithOffsets",
    "WhitespaceTokenizeWithOffsets",
    "WordpieceTokenizeWithOffsets",
})
ALLOW_LIST_SOURCE = (
    f"TF Serving {TF_SERVING_RELEASE} links tensorflow_text:ops_lib of TF Text 2.12.1 "
    "(tensorflow/serving tensorflow_serving/model_servers/BUILD and workspace.bzl); the op "
    "names are those TF Text 2.12.1 registers; see TF_SERVING_CUSTOM_OPS in "
    "serving/tf_serving_ops.py")


def unsupported_op_problems(non_core_ops: Sequence[str],
                            allowed_custom_ops: AbstractSet[str] = TF_SERVING_CUSTOM_OPS
                            ) -> List[str]:
    """One problem naming the non-core ops the model server does not link in; [] if none."""
    unsupported = sorted(set(non_core_ops) - set(allowed_custom_ops))
    if not unsupported:
        return []
    names = ", ".join(repr(op) for op in unsupported)
    return [f"the model uses op(s) {names}, which core TensorFlow does not register and stock "
            f"TensorFlow Serving {TF_SERVING_RELEASE} does not link in: the model server would "
            f"fail to load it with \"Op type not registered\" (allow-list: {ALLOW_LIST_SOURCE})"]
