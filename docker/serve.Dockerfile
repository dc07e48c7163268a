# The service: `mlresearch serve` on one deliver run, as a non-root user, with the CPU build of torch.
#   docker build -f docker/serve.Dockerfile -t mlresearch-serve .
#   docker run -p 8000:8000 -v "$PWD/research/deliver:/runs:ro" mlresearch-serve /runs/2026-11-26_digits-cnn --host 0.0.0.0
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 mlresearch
WORKDIR /opt/mlresearch
COPY pyproject.toml README.md ./
COPY mlresearch ./mlresearch
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu && pip install .
# numeric, so that Kubernetes' runAsNonRoot can check it (the user is created above with this uid)
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2).status != 200)"]
ENTRYPOINT ["mlresearch", "serve"]
CMD ["/runs/model", "--host", "0.0.0.0", "--port", "8000"]
