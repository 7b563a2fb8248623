"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines.

Like the TFX template's kubeflow_v2_runner.py, this only compiles. TFX's KubeflowV2DagRunner
turns `create_pipeline(config)` into a PipelineJob JSON (the PipelineSpec is under
"pipelineSpec"; a .yaml output gets the bare PipelineSpec), which Vertex AI Pipelines or a KFP v2
backend runs. Every task runs in `config.image`, the pipeline image the Dockerfile builds.
`bertpipe compile --target kubeflow-v2 --output FILE --image IMAGE <run flags>` calls
`compile_pipeline`.

Paths. The pipeline's pods run elsewhere and cannot read this machine's files, so no path of
this machine may go into the spec:
- Every path setting must be a gs:// URI (PATH_FIELDS). eval_data, schema_path and
  serving_root may be empty; then they are unused or derived from output_dir.
- The checkpoint must be a gs:// URI of a Hugging Face model directory. '' (the packaged MiniLM)
  and a local directory are paths of this machine, and a hub id would have to be downloaded
  into this machine's cache. Copy the checkpoint to GCS first.
- beam_args must not contain local paths.
- The compiled spec is then searched for paths of this machine (repository, working and home
  directories, temp directory, virtualenv). If one is found, the runner raises and writes nothing.
The checks raise CloudConfigError, a ValueError that names the offending setting and its flag.

Nothing is read. Compiling needs no credentials and no network: create_pipeline builds the DAG
from the settings alone. The checkpoint is checked where it is used (the Transform and Trainer
executors, in the pipeline's pods), the schema by ImportSchemaGen. The label values for the
Evaluator's per-class metrics come from --label-values (a gs:// schema is not read here).

ML Metadata. KFP and Vertex AI record metadata themselves: create_pipeline sets no metadata
connection (the local runner adds its SQLite store), so none goes into the spec.

tfx is imported inside the functions, so `bertpipe --help` stays fast.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from typing import Any, Dict, List, Optional

from pipeline.config import PipelineConfig, flag_of

REMOTE_PREFIX = "gs://"
# Settings that hold paths. The ones in OPTIONAL_PATH_FIELDS may be empty.
PATH_FIELDS = ("train_data", "eval_data", "checkpoint", "schema_path", "output_dir",
               "serving_root")
OPTIONAL_PATH_FIELDS = frozenset({"eval_data", "schema_path", "serving_root"})
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CloudConfigError(ValueError):
    """A config that cannot be compiled for a cloud run; the message names the field."""


def _is_remote(value: str) -> bool:
    return value.startswith(REMOTE_PREFIX) and len(value) > len(REMOTE_PREFIX)


def _looks_like_local_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~", "file:"))


def check_cloud_config(config: PipelineConfig) -> None:
    """Raises CloudConfigError unless every path of `config` is a gs:// URI."""
    settings = config.settings()
    for field in PATH_FIELDS:
        value = settings[field]
        if (not value and field in OPTIONAL_PATH_FIELDS) or _is_remote(value):
            continue
        if field == "checkpoint":
            what = ("empty, which means the packaged MiniLM directory of this machine"
                    if not value else "not a gs:// URI")
            raise CloudConfigError(
                f"checkpoint ({flag_of(field)}) {value!r} is {what}. For kubeflow-v2 the "
                "checkpoint must be a gs:// URI of a Hugging Face model directory (config.json, "
                "vocab.txt, tokenizer_config.json, weights). A local directory is a path of "
                "this machine, and a hub id would be downloaded into this machine's Hugging "
                "Face cache. Neither can be read by the pipeline's pods. Copy the directory "
                "to GCS (`bertpipe info` prints the packaged one), e.g. "
                "`gsutil -m cp -r DIR gs://BUCKET/checkpoints/NAME`, and pass that URI.")
        raise CloudConfigError(
            f"{field} ({flag_of(field)}) is {value!r}: for kubeflow-v2 every path must be a "
            "gs:// URI. The pipeline's pods cannot read this machine's files, and no local "
            "path may go into the pipeline spec.")
    for arg in config.runtime.beam_pipeline_args:
        value = arg.partition("=")[2] if arg.startswith("--") else arg
        if _looks_like_local_path(value):
            raise CloudConfigError(
                f"beam_args (--beam-args) contains {arg!r}, a local path: for kubeflow-v2 use "
                "gs:// URIs (e.g. --temp_location=gs://BUCKET/tmp).")


def build_pipeline(config: PipelineConfig):
    """create_pipeline(config) for a cloud run: checked paths, no local metadata config."""
    from pipeline.pipeline import create_pipeline
    check_cloud_config(config)
    try:
        return create_pipeline(config, kubeflow=True)
    except ValueError as error:  # e.g. a component that refuses a setting
        raise CloudConfigError(f"create_pipeline refused the config: {error}") from error


def local_path_prefixes() -> List[str]:
    """Directories of this machine that must not appear in a compiled spec."""
    candidates = [_REPO_ROOT, os.getcwd(), os.path.expanduser("~"), tempfile.gettempdir(),
                  os.environ.get("HF_HOME", "")]
    if sys.prefix != sys.base_prefix:  # a virtualenv
        candidates.append(sys.prefix)
    prefixes = {os.path.normpath(path) for path in candidates if path and os.path.isabs(path)}
    return sorted(prefix for prefix in prefixes if prefix != os.sep)


def find_local_paths(text: str, prefixes: Optional[List[str]] = None) -> List[str]:
    """Snippets of `text` where a path under one of `prefixes`, or a file: URI, appears.

    A prefix counts only where a path can start: "/root" is found in "--x=/root/a" and in
    '"/root"', but not in "gs://bucket/runs/bertpipe/root".
    """
    found = []
    for prefix in (local_path_prefixes() if prefixes is None else prefixes):
        pattern = r"(?<![\w./-])" + re.escape(prefix) + r"(?![\w.-])"
        found += [text[max(0, m.start() - 40):m.end() + 40]
                  for m in re.finditer(pattern, text)]
    found += [text[max(0, m.start() - 40):m.end() + 40]
              for m in re.finditer(r"file:/", text)]
    return found


def compile_pipeline(config: PipelineConfig, output_file: str) -> Dict[str, Any]:
    """Writes the PipelineJob JSON (or PipelineSpec YAML) of `config` to `output_file`.

    Returns the PipelineJob as a dict. Raises CloudConfigError for a local path, or if a path
    of this machine ends up in the spec. In that case nothing is written.
    """
    from tfx import v1 as tfx
    image = config.runtime.image
    if not image or any(character.isspace() for character in image):
        raise CloudConfigError(f"image (--image) {image!r} is not a container image name")
    pipeline = build_pipeline(config)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(output_file) or None,
        output_filename=os.path.basename(output_file))
    job = runner.run(pipeline, write_out=False)
    leaks = find_local_paths(json.dumps(job))
    if leaks:
        raise CloudConfigError(
            "the compiled pipeline spec contains paths of this machine, which the pipeline's "
            "pods cannot read; nothing was written:\n" +
            "\n".join(f"  ...{snippet}..." for snippet in leaks[:5]))
    return runner.run(pipeline, write_out=True)
