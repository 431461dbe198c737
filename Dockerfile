FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 gcc && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY emoroute emoroute
COPY router router
COPY audio_models audio_models
COPY telephony telephony
COPY dashboards dashboards
RUN pip install --no-cache-dir .
# Check every model loads and cache the intent examples' embeddings in the image, so a
# container starts without encoding them first.
ENV EMOROUTE_MODEL_CACHE_DIR=/opt/emoroute-models
RUN emoroute prepare-models
ENV EMOROUTE_DATA_DIR=/data
# an unprivileged user (Kubernetes runs it with a read-only root file system: /data and /tmp are
# volumes); caches go under /tmp
RUN useradd --uid 10001 --user-group --no-create-home emoroute && mkdir -p /data && chown 10001:10001 /data
ENV HOME=/tmp XDG_CACHE_HOME=/tmp/cache
USER 10001
EXPOSE 8000
CMD ["emoroute", "serve", "--host", "0.0.0.0", "--port", "8000"]
