"""Where ExampleGen reads: one input base plus a file pattern per split.

TFX's file-based ExampleGens take one `input_base` directory and patterns relative to it. Users
give a training file (or directory, or glob, maybe with {SPAN}) and optionally an evaluation
one; this module turns them into that form, and chooses a hash split when no eval data is given.
It works on the strings alone: a directory is a path ending in '/', which
pipeline/local_inputs.py makes of a local directory before the pipeline is built.
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

from tfx.proto import example_gen_pb2

from pipeline.config import DataConfig, is_remote

_PATTERN_CHARACTERS = set("*?[{")


def _fixed_directory(path: str) -> str:
    """The longest leading directory of `path` that holds no glob or {SPAN} characters."""
    fixed = []
    for part in path.split("/")[:-1]:
        if _PATTERN_CHARACTERS & set(part):
            break
        fixed.append(part)
    return "/".join(fixed) or "/"


def _relative_pattern(path: str, base: str) -> str:
    pattern = path[len(base):].lstrip("/") if path.startswith(base) else path
    return pattern + "*" if path.endswith("/") else pattern


def example_gen_inputs(data: DataConfig
                       ) -> Tuple[str, example_gen_pb2.Input, example_gen_pb2.Output]:
    """(input_base, input_config, output_config) for ExampleGen, from absolute paths or URIs."""
    paths: Dict[str, str] = {"train": data.train_data}
    if data.eval_data:
        paths["eval"] = data.eval_data
    if any(is_remote(path) for path in paths.values()):
        base = os.path.dirname(os.path.commonprefix(list(paths.values())))
    else:
        base = os.path.commonpath([_fixed_directory(path) for path in paths.values()])
    splits = [example_gen_pb2.Input.Split(name=name, pattern=_relative_pattern(path, base))
              for name, path in paths.items()]
    input_config = example_gen_pb2.Input(splits=splits)
    if data.eval_data:
        output_config = example_gen_pb2.Output()
    else:
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=data.train_buckets),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=data.eval_buckets),
        ]))
    return base, input_config, output_config
