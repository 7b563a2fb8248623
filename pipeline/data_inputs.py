"""Where ExampleGen reads: one input base plus a file pattern per split.

TFX's file-based ExampleGens take one `input_base` directory and patterns relative to it. Users
give a training file (or directory, or glob, maybe with {SPAN}) and optionally an evaluation
one; this module turns them into that form, and chooses a hash split when no eval data is given.
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

from tfx.proto import example_gen_pb2

from pipeline.config import PipelineConfig

_PATTERN_CHARACTERS = set("*?[{")


def _fixed_directory(path: str) -> str:
    """The longest leading directory of `path` that holds no glob or {SPAN} characters."""
    if os.path.isdir(path) and not _PATTERN_CHARACTERS & set(path):
        return path
    parts = path.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if _PATTERN_CHARACTERS & set(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or os.sep


def _relative_pattern(path: str, base: str) -> str:
    pattern = os.path.relpath(path, base) if path != base else ""
    if os.path.isdir(path) and not _PATTERN_CHARACTERS & set(path):
        pattern = os.path.join(pattern, "*")
    return pattern


def example_gen_inputs(config: PipelineConfig
                       ) -> Tuple[str, example_gen_pb2.Input, example_gen_pb2.Output]:
    """(input_base, input_config, output_config) for ExampleGen; config must be resolved()."""
    paths: Dict[str, str] = {"train": config.train_data}
    if config.eval_data:
        paths["eval"] = config.eval_data
    if any("://" in path for path in paths.values()):
        base = os.path.dirname(os.path.commonprefix(list(paths.values())))
    else:
        base = os.path.commonpath([_fixed_directory(path) for path in paths.values()])
    splits = [example_gen_pb2.Input.Split(name=name, pattern=_relative_pattern(path, base))
              for name, path in paths.items()]
    input_config = example_gen_pb2.Input(splits=splits)
    if config.eval_data:
        output_config = example_gen_pb2.Output()
    else:
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=config.train_buckets),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=config.eval_buckets),
        ]))
    return base, input_config, output_config
