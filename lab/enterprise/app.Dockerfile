# The ACD application image: REST API replicas and dispatchers (build context: the repo).
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY acd ./acd
COPY lab ./lab
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "uvicorn", "acd.api.app:app", "--host", "0.0.0.0", "--port", "8000"]
