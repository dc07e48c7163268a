# Training jobs and JupyterLab: the `mlresearch` command on a project mounted at /project, as a non-root user, CPU torch.
#   docker build -f docker/train.Dockerfile -t mlresearch-train .
#   docker run -v "$PWD:/project" mlresearch-train deliver train --name digits-cnn --auto-suffix -p dataset=sklearn:digits
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 MLRESEARCH_ROOT=/project MPLBACKEND=Agg
# git's version is the base image's Debian release's: an exact pin would break the build at the release's next security update
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/* \
  && useradd --create-home --uid 10001 mlresearch
WORKDIR /opt/mlresearch
COPY pyproject.toml README.md ./
COPY mlresearch ./mlresearch
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu && pip install . "jupyterlab>=4"
# numeric, so that Kubernetes' runAsNonRoot can check it (the user is created above with this uid)
USER 10001
WORKDIR /project
ENTRYPOINT ["mlresearch"]
CMD ["deliver", "train", "--name", "digits-cnn", "--auto-suffix", "-p", "dataset=sklearn:digits", "-p", "model=cnn"]
