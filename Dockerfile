# The csm worker and CLI. Built by docker-compose (csm-worker, csm-migrate).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md worker.py ./
COPY csm ./csm
COPY workflows ./workflows
COPY activities ./activities
COPY starter ./starter
RUN pip install --no-cache-dir . && useradd --create-home csm
USER csm
ENV PYTHONUNBUFFERED=1
CMD ["csm", "worker"]
