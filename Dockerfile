# The image that runs mlpipe nodes on machines that share no disk with yours: Kubeflow pods
# (`mlpipe compile --target kubeflow --image IMAGE`), Airflow's Kubernetes executor, any worker
# that calls `mlpipe run-node`. It holds the pinned stack, mlpipe, and the repository's pipelines
# and module code at /app, the paths a pipeline compiled inside the image records (docs/kubeflow.md).
#
#   docker build -t registry.example.com/ml/mlpipe:$(git rev-parse --short HEAD) .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_USE_LEGACY_KERAS=1

WORKDIR /app

# The lock file alone first, so a code change does not reinstall the ~3 GB stack (its own layer).
# uv installs it in a fraction of pip's time and never backtracks: every version is pinned.
COPY requirements.lock .
RUN pip install uv==0.13.9 \
    && python -m uv pip install --system --compile-bytecode -r requirements.lock

COPY setup.py ./
COPY mlpipe/ mlpipe/
RUN python -m uv pip install --system --compile-bytecode --no-deps .

# The demo's pipelines, module code and sample data, so the image runs the taxi pipeline as is.
# Your own pipeline: COPY it here too, or build FROM this image and add it.
COPY components/ components/
COPY pipelines/ pipelines/
COPY examples/data/ examples/data/

# Nodes need no root; KFP runs the task's command (python3 -m kfp.dsl.executor_main) in /app.
RUN useradd --create-home --uid 1000 mlpipe
USER mlpipe

CMD ["mlpipe", "--help"]
