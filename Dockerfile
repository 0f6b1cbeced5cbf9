# TuneWise demo image: the same app, read-only by default, no GPU needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TUNEWISE_WAREHOUSE=/data/warehouse.duckdb \
    TUNEWISE_READ_ONLY=1

RUN useradd --create-home --uid 1000 tunewise \
    && mkdir -p /data \
    && chown tunewise:tunewise /data

WORKDIR /app
COPY --chown=tunewise:tunewise requirements.txt pyproject.toml README.md ./
COPY --chown=tunewise:tunewise core ./core
COPY --chown=tunewise:tunewise app ./app
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=tunewise:tunewise pages ./pages
COPY --chown=tunewise:tunewise data ./data
COPY --chown=tunewise:tunewise .streamlit ./.streamlit

USER 1000:1000
# Build the warehouse from the shipped seed at image build time, so read-only demos have data.
RUN TUNEWISE_READ_ONLY=0 python -m core warehouse init
# The opening pages' training steps (Decide's and Memory's, on the default model) ship in data/profiles; where the
# image's torch, transformers or peft differ from the versions they were built with, trace them into the image's
# cache here instead, so a fresh container still answers them from disk (with shipped profiles this is quick).
RUN python -m core recommend --task-type classification --train-examples 10000 --gpu A100-80GB \
        --model meta-llama/Llama-2-7b-hf \
        > /dev/null \
    && python -c "from app.warmup import default_estimates; default_estimates()"

VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "app/main.py", "--server.address=0.0.0.0", "--server.port=8501"]
