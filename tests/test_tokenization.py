"""In-graph BERT tokenization: behaviour on a tiny vocabulary, and parity with transformers'
BertTokenizerFast on the packaged checkpoint for the edge cases users hit."""
import pytest
import tensorflow as tf

from preprocessing.checkpoint import (CheckpointError, read_tokenizer_settings,
                                      resolve_checkpoint)
from preprocessing.tokenization import BertTokenizerGraph

# Edge cases: empty, accents, CJK, emoji, control characters, odd whitespace, casing rules,
# over-long words and texts. Shared with the check-tokenizer command test.
EDGE_CASES = [
    "", "   ", "Café naïve résumé façade", "北京欢迎你，東京タワー", "I love it 😀🎉!! 👍🏽",
    "ctrl\x00char\x07s\x1b[0m here", "tab\tnew\nline\rcarriage", "zero\u200bwidth\u00a0nbsp",
    "Straße ẞ", "ﬁne ligature", "İstanbul ÅNGSTRÖM Ωmega", "a" * 150, "x " * 300,
    "don't can't won't", "\ufffdreplacement", "e\u0301 combining", "Ⅻ roman numeral",
    "fullwidth ＡＢＣ １２３", "¿Qué? ¡Sí!", "\u3000ideographic space", "السلام عليكم",
    "привет МИР", "😀" * 30, "soft\u00adhyphen", "\x7f del \x85 nel", "word" + "é" * 60,
    "MIXED case TEXT", "email@example.com http://x.y/z?a=1", "1,000.50 $ € ¥",
]


def tokenize(checkpoint, texts, max_seq_length=128):
    graph = BertTokenizerGraph(read_tokenizer_settings(str(checkpoint)), max_seq_length)
    return {name: value.to_list() for name, value in graph(tf.constant(texts)).items()}


def test_tiny_vocab_wordpieces_special_tokens_mask_and_type_ids(tiny_checkpoint):
    out = tokenize(tiny_checkpoint, ["The movie was UNBELIEVABLE!", "", "zzz"])
    # [CLS]=2 the=5 movie=6 was=7 un=11 ##believ=12 ##able=13 !=17 [SEP]=3; unknown -> [UNK]=1
    assert out["input_ids"] == [[2, 5, 6, 7, 11, 12, 13, 17, 3], [2, 3], [2, 1, 3]]
    assert out["input_mask"] == [[1] * 9, [1, 1], [1, 1, 1]]
    assert out["input_type_ids"] == [[0] * 9, [0, 0], [0, 0, 0]]


def test_truncation_keeps_cls_and_sep(tiny_checkpoint):
    out = tokenize(tiny_checkpoint, ["the movie was great good bad"], max_seq_length=5)
    assert out["input_ids"] == [[2, 5, 6, 7, 3]]


def test_lower_casing_and_accents_follow_the_checkpoint(tmp_path):
    from conftest import write_tiny_checkpoint
    lower = write_tiny_checkpoint(tmp_path / "lower", lower_case=True)
    cased = write_tiny_checkpoint(tmp_path / "cased", lower_case=False)
    # Unicode lower-casing keeps 'ß' (NFKC case folding would make it 'ss').
    assert tokenize(lower, ["The CAFÉ ß"])["input_ids"] == [[2, 5, 14, 26, 3]]
    assert tokenize(cased, ["The CAFÉ ß"])["input_ids"] == [[2, 1, 1, 26, 3]]


def test_matches_transformers_on_edge_cases():
    from transformers import BertTokenizerFast
    checkpoint = resolve_checkpoint("")
    reference = BertTokenizerFast.from_pretrained(checkpoint)
    for max_seq_length in (128, 16):
        ours = tokenize(checkpoint, EDGE_CASES, max_seq_length)["input_ids"]
        theirs = reference(EDGE_CASES, truncation=True, max_length=max_seq_length)["input_ids"]
        mismatched = [text for text, a, b in zip(EDGE_CASES, ours, theirs) if a != b]
        assert mismatched == [], f"max_seq_length={max_seq_length}"


def test_checkpoint_errors_are_specific(tmp_path):
    (tmp_path / "not_a_model").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json, vocab.txt"):
        resolve_checkpoint(str(tmp_path / "not_a_model"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is a file"):
        resolve_checkpoint(str(tmp_path / "file.bin"))
