"""Row-level parsing and checking of CSV/TSV input (TextExampleGen's reader), no Beam."""
import pytest

from components.text_example_gen import InputDataError, delimiter_for, parse_delimited_file


def parse(path, text_column="text", label_column="label", data_format="auto"):
    items = list(parse_delimited_file(str(path), text_column, label_column, data_format))
    return items[:-1], items[-1]


def test_csv_with_quoted_commas_quotes_newlines_and_bom(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes('\ufefftext,label\n"Great, really ""great""",positive\n'
                     '"two\nlines",negative\n\nplain,positive\n'.encode("utf-8"))
    rows, errors = parse(path)
    assert errors == []
    assert rows == [('Great, really "great"', "positive"), ("two\nlines", "negative"),
                    ("plain", "positive")]


def test_tsv_keeps_quote_characters_and_integer_labels(tmp_path):
    path = tmp_path / "sst.tsv"
    path.write_text('sentence\tlabel\nit \'s a "gem" \t1\n`` dull \'\' \t0\n', encoding="utf-8")
    rows, errors = parse(path, text_column="sentence")
    assert errors == []
    assert rows == [('it \'s a "gem" ', "1"), ("`` dull '' ", "0")]


def test_extra_field_names_file_and_line(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("text,label\nok,positive\n\"a, b\",negative,surplus\n", encoding="utf-8")
    rows, errors = parse(path)
    assert rows == [("ok", "positive")]
    assert errors == [f"{path} line 3: 3 fields, but the header has 2 "
                      "(','-separated: ['text', 'label'])"]


def test_non_utf8_bytes_name_line_and_byte(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nok,positive\ncaf\xe9 cr\xe8me,negative\n".encode("latin-1"))
    rows, errors = parse(path)
    assert rows == [("ok", "positive")]
    assert errors == [f"{path} line 3: not valid UTF-8 (byte 0xe9 at byte offset 3)"]


def test_missing_columns_are_named_with_the_header(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("review,stars\ngood,5\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"no text column 'text' and no label column "
                                             r"'label'; its columns are \['review', 'stars'\]"):
        parse(path)


def test_empty_file_and_header_only_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputDataError, match="empty.csv: the file is empty"):
        parse(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n", encoding="utf-8")
    assert parse(header_only) == ([], [f"{header_only}: the file has a header but no data rows"])


def test_entirely_empty_text_column_and_empty_label(tmp_path):
    path = tmp_path / "blank.tsv"
    path.write_text("text\tlabel\n\t1\n  \t0\n", encoding="utf-8")
    rows, errors = parse(path)
    assert errors == [f"{path}: the text column 'text' is empty in all 2 rows"]
    path.write_text("text\tlabel\nfine\t\n", encoding="utf-8")
    assert parse(path)[1] == [f"{path} line 2: the label column 'label' is empty"]


def test_many_errors_are_capped_and_counted(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\n" + "a,b,c\n" * 25, encoding="utf-8")
    rows, errors = parse(path)
    assert len(errors) == 11 and errors[-1] == f"{path}: ... and 15 more problems"


def test_delimiter_from_extension_or_format():
    assert delimiter_for("x/train.csv", "auto") == ","
    assert delimiter_for("x/train.tsv", "auto") == "\t"
    assert delimiter_for("x/train.data", "tsv") == "\t"
    with pytest.raises(InputDataError, match="cannot tell CSV from TSV"):
        delimiter_for("x/train.data", "auto")
