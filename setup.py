"""Installable package for the bertpipe TFX pipeline (`pip install -e .`).

Runtime dependencies are pinned in requirements.lock (installed by `make install`); the ranges
here only state what the code needs, so the package also installs into a user's own environment.
"""
from setuptools import find_packages, setup

setup(
    name="bertpipe",
    version="0.1.0",
    description="TFX pipeline that fine-tunes BERT-family models for text classification "
    "and ships them to TensorFlow Serving",
    license="Apache-2.0",
    python_requires=">=3.9,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "components", "components.*",
                                    "preprocessing", "preprocessing.*", "trainer", "trainer.*",
                                    "serving", "serving.*"]),
    install_requires=[
        "tfx[kfp]>=1.16,<1.17",
        "tensorflow>=2.16,<2.17",
        "tensorflow-transform>=1.16,<1.17",
        "tensorflow-data-validation>=1.16,<1.17",
        "tensorflow-text>=2.16,<2.17",
        "transformers>=4.40,<4.50",
        "tensorflow-serving-api>=2.16,<2.17",
        "google-cloud-aiplatform",
        "grpcio",
        "tornado>=6.4",
        "requests",
        "prometheus-client",
        "matplotlib>=3.8",
        "jinja2>=3.1",
    ],
    # The default batching and monitoring files of `bertpipe serve` (shared with the container).
    package_data={"serving": ["deploy/*", "openapi.yaml"], "pipeline": ["report_template.html"]},
    entry_points={"console_scripts": ["bertpipe = pipeline.cli:main"]},
)
