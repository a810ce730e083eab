# reward serve: the HTTP reward service. Configure with REWARD_* environment variables (see README):
#   docker run -p 8000:8000 -e REWARD_JUDGE_MODEL=openai/gpt-4.1-2025-04-14 -e OPENAI_API_KEY=... -v reward-cache:/cache reward
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY reward ./reward
COPY rubrics ./rubrics
COPY templates ./templates
# A wheel install carries rubrics/ and templates/ inside the package (reward/_data).
# Every dependency at the version the tests ran with (constraints.txt); the base image is a tag, to be pinned
# by digest where the image is built (`docker buildx imagetools inspect python:3.11-slim`).
# Only what serving needs: the `redis` extra (a shared cache), not `report` (matplotlib: `reward report` plots).
RUN pip install -c constraints.txt '.[redis]' && rm -rf /app/reward

RUN useradd --create-home --uid 10001 reward && mkdir -p /cache && chown reward /cache
USER reward

# Reachable from outside the container: set REWARD_TOKENS (`reward serve` warns at start when it is unset).
ENV REWARD_HOST=0.0.0.0
ENV REWARD_PORT=8000
ENV REWARD_CACHE_DIR=/cache
ENV REWARD_WORKERS=1
VOLUME ["/cache"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD python -c "import os,sys,urllib.request; url='http://127.0.0.1:%s/healthz' % os.environ.get('REWARD_PORT','8000'); sys.exit(urllib.request.urlopen(url, timeout=4).status != 200)"

ENTRYPOINT ["reward", "serve"]
