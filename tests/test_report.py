"""The run report (pipeline/report.py) of real pipeline runs on the demo data with a tiny BERT,
rendered by headless Chromium: every section is there with the run's own figures, every image
decodes, and sections of components a run left out say "not run"."""
import contextlib
import html.parser
import io
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from PIL import Image

from pipeline import cli, local_runner, report, run_artifacts
from pipeline import runs as pipeline_runs  # `runs` is the fixture below

SECTIONS = ("run", "statistics", "anomalies", "text", "training", "evaluation", "slices",
            "serving")
DATA_HALF_ONLY = "not run: this run was the data half only (--no-train)"
# Headless Chromium as root in a container; without the networking flags it waits on refused
# connections (component updates, sync) before it renders.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")
# Added to a copy of the report: after the page has loaded, each image records the width it
# decoded to (0 for a broken image) where --dump-dom can see it.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  for (const image of document.images) image.dataset.naturalWidth = image.naturalWidth;
  document.body.dataset.imagesProbed = document.images.length;
});
</script>"""


@pytest.fixture(scope="module")
def runs(demo_first_run, tmp_path_factory):
    """The report of the shared first run (blessed, pushed as version 1), and `bertpipe run
    --no-train` in the same directory (cached: seconds), which writes its own report."""
    config = demo_first_run
    run_dir = config.run_dir
    first_run_id = pipeline_runs.run_ids(run_dir)[0]
    output = tmp_path_factory.mktemp("reports")
    full_report = report.write_report(run_dir, str(output / "full.html"), first_run_id)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["run", "--no-train", "--enable-cache", "--train-data", config.data.train_data,
                         "--eval-data", config.data.eval_data, "--schema-path", config.data.schema_path,
                         "--checkpoint", config.model.checkpoint, "--max-seq-length",
                         str(config.model.max_seq_length), "--output-dir", config.runtime.output_dir,
                         "--text-anomalies", config.quality.text_anomalies]) == 0
    return {"config": config, "run_dir": run_dir, "full_report": full_report,
            "full_run": pipeline_runs.read_run(run_dir, first_run_id), "output": output,
            "data_half_printed": printed.getvalue(),
            "data_half_run_id": pipeline_runs.run_ids(run_dir)[-1]}


def chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium not found: the report test renders the page in headless "
                    "Chromium; install it with `apt-get install chromium`")
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=True)


class SectionText(html.parser.HTMLParser):
    """The visible text of each <section id=...>, and every <img>'s attributes."""

    def __init__(self, page: str):
        super().__init__()
        self.sections, self.images, self._current = {}, [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._current = attrs.get("id")
            self.sections[self._current] = ""
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "section":
            self._current = None

    def handle_data(self, data):
        if self._current and data.strip():
            self.sections[self._current] = " ".join(
                (self.sections[self._current] + " " + data).split())


def test_full_run_report_shows_every_section_in_chromium(runs, tmp_path):
    page = open(runs["full_report"], encoding="utf-8").read()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "external URL in report"
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", IMAGE_PROBE + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom",
                   probed.as_uri()).stdout
    assert 'data-images-probed="' in dom, "the page did not finish loading in Chromium"
    parsed = SectionText(dom)
    assert set(SECTIONS) <= set(parsed.sections), sorted(parsed.sections)
    # Images: the label and token-length charts, the curves, accuracy by slice; all decoded.
    assert len(parsed.images) >= 4, parsed.images
    for image in parsed.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert int(image["data-natural-width"]) > 100, image.get("alt")
    alts = {image.get("alt") for image in parsed.images}
    assert {"training curves", "accuracy by slice", "label distribution",
            "text distribution"} <= alts, alts

    sections = parsed.sections
    run = runs["full_run"]
    assert [name for name, entry in run.components.items() if not entry.succeeded] == []
    for component in ("StatisticsGen", "Transform", "Trainer", "Evaluator", "ServingPusher"):
        assert component in sections["run"]
    assert str(runs["config"].resolved().data.train_data) in sections["run"]

    # Statistics: the demo data's own counts (330 train rows, 108 eval rows, two labels).
    assert re.search(r"label .* train STRING 330 0 \(0%\) 2 ", sections["statistics"])
    assert re.search(r"eval STRING 108 0 \(0%\) 108 ", sections["statistics"])
    assert "none" in sections["anomalies"] and "eval" in sections["anomalies"]
    # The tokenized text per split and label (the tiny vocabulary: mostly [UNK], so warned).
    assert re.search(r"train all 330 \d+", sections["text"]), sections["text"]
    assert re.search(r"eval negative 54 \d+", sections["text"]), sections["text"]
    assert "feature 'unknown_token_share'" in sections["text"]
    assert "would warn" in sections["text"]

    # Training: one epoch row with the values TensorBoard logged.
    assert "train loss" in sections["training"] and "validation accuracy" in sections["training"]
    assert re.search(r"epoch .*\b1 \d\.\d{4} \d\.\d{4}", sections["training"])

    # Evaluation: the metrics TFMA wrote, per class under the schema's label names.
    evaluation = run.artifact("Evaluator", "evaluation")
    metrics = run_artifacts.overall_metrics(evaluation.uri)
    accuracy = f"{metrics['sparse_categorical_accuracy']:.4f}"
    assert f"sparse_categorical_accuracy {accuracy}" in sections["evaluation"]
    assert "negative" in sections["evaluation"] and "positive" in sections["evaluation"]
    assert "Confusion matrix" in sections["evaluation"]
    assert "no baseline" in sections["evaluation"]
    assert "passed" in sections["evaluation"]
    assert "overall" in sections["slices"] and "length_bucket = <=16" in sections["slices"]

    # Blessing and push: the version directory the report names exists.
    assert "BLESSED" in sections["serving"] and "INFRA BLESSED" in sections["serving"]
    pushed = run.artifact("ServingPusher", "pushed_model")
    destination = pushed.get_custom_property("pushed_destination")
    assert "version 1" in sections["serving"] and destination in sections["serving"]
    assert os.path.isdir(destination) and destination.endswith(os.sep + "1")

    # What a person sees: the dark header band is painted and the page is not blank.
    screenshot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={screenshot}",
             probed.as_uri())
    with Image.open(screenshot) as image:
        image = image.convert("RGB")
        assert image.getpixel((5, 5)) == (0x17, 0x32, 0x4d)
        assert len(image.getcolors(1 << 20)) > 200


def test_data_half_run_writes_a_report_saying_training_did_not_run(runs, capsys):
    written = os.path.join(runs["run_dir"], report.REPORT_FILE_NAME)
    printed = runs["data_half_printed"]
    assert f"report: {written}\n" in printed
    # The terminal summary is of this run only: the earlier full run's model is not its own.
    assert re.search(r"^  Transform +\d", printed, re.M), printed
    assert not re.search(r"Trainer|model blessed|pushed", printed), printed
    sections = SectionText(open(written, encoding="utf-8").read()).sections
    for section in ("training", "evaluation", "slices", "serving"):
        assert DATA_HALF_ONLY in sections[section], section
    assert "Transform cached" in sections["run"]
    assert not re.search(r"Trainer (complete|cached)", sections["run"])
    assert re.search(r"label .* train STRING 330 ", sections["statistics"])
    assert "none" in sections["anomalies"]

    # `bertpipe report` of the same run, by its id, to a file of one's choice.
    output = runs["output"] / "data_half.html"
    assert cli.main(["report", "--run-dir", runs["run_dir"], "--run-id",
                     runs["data_half_run_id"], "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {output}"
    assert SectionText(output.read_text(encoding="utf-8")).sections == sections


def test_report_command_names_a_directory_without_a_run(tmp_path, capsys):
    assert cli.main(["report", "--run-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"error: no ML Metadata store at {tmp_path / 'metadata.sqlite'}" in error
    assert not (tmp_path / "metadata.sqlite").exists()  # the report created no store


def test_report_command_lists_the_runs_for_an_unknown_run_id(runs, capsys):
    assert cli.main(["report", "--run-dir", runs["run_dir"], "--run-id", "yesterday"]) == 2
    error = capsys.readouterr().err
    assert f"has no run 'yesterday'; its runs: {pipeline_runs.run_ids(runs['run_dir'])[0]}" in error


@pytest.mark.slow
def test_not_blessed_run_says_why_and_compares_with_the_baseline(runs, tmp_path):
    # In a copy of the shared run directory, which other tests read as they found it.
    # Retrains (the config changed) and evaluates against version 1, the served model.
    config = runs["config"].replace(output_dir=str(tmp_path / "runs"),
                                 min_accuracy=1.01)
    shutil.copytree(runs["config"].runtime.output_dir, config.runtime.output_dir)
    local_runner.run(config)
    page = open(report.write_report(config.run_dir, str(tmp_path / "report.html")),
                encoding="utf-8").read()  # the latest run: this one
    sections = SectionText(page).sections
    assert "NOT BLESSED" in sections["serving"] and "not pushed" in sections["serving"]
    assert re.search(r"not pushed: accuracy \d\.\d{4} below the minimum 1\.01",
                     sections["serving"])
    assert "compared with: served version 1 (" in sections["evaluation"]
    # value, baseline value, change
    assert re.search(r"sparse_categorical_accuracy \d\.\d{4} \d\.\d{4} [+-]\d\.\d{4}",
                     sections["evaluation"])


@pytest.mark.slow
def test_run_stopped_by_anomalies_says_where_and_why(demo_first_run, tmp_path):
    eval_csv = tmp_path / "eval.csv"
    demo_eval = open(demo_first_run.data.eval_data, encoding="utf-8").read()
    eval_csv.write_text(demo_eval.rstrip("\n") + '\n"It was fine, I guess.",neutral\n',
                        encoding="utf-8")
    config = demo_first_run.replace(eval_data=str(eval_csv),
                                 output_dir=str(tmp_path / "runs"))
    with pytest.raises(Exception) as raised:
        local_runner.run(config)
    assert cli.find_user_error(raised.value) is not None, raised.value
    page = open(report.write_report(config.run_dir), encoding="utf-8").read()
    assert "failed at ValidationGate" in " ".join(page.split())
    sections = SectionText(page).sections
    assert "ValidationGate failed" in sections["run"]
    assert re.search(r"eval feature 'label': Unexpected string values: .*neutral",
                     sections["anomalies"])
    for section in ("training", "evaluation", "slices"):
        assert "not run: the run stopped when ValidationGate failed" in sections[section]
