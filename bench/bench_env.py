"""Process set-up shared by the bench scripts; each imports it first, before TensorFlow.

A script run as `python bench/NAME.py` has bench/ on sys.path already; this puts the repository
root there too (for the project's packages), and sets what transformers' TF models need
(Keras 2) and the offline mode of this project's machines.
"""
import os
import pathlib
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF models need Keras 2
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = pathlib.Path(__file__).resolve().parent.parent
SST2_DIR = REPO.parent / "shared" / "data" / "sst2"  # the reference data beside the repository
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
