#!/usr/bin/env sh
# Check a judge and rubric against the labelled calibration set in one command:
#   examples/calibration/check.sh [reward score options, e.g. --rubric my.yaml --samples 3]
# The judge comes from the usual settings (REWARD_JUDGE_MODEL, the provider's API key, ...).
set -eu
here=$(dirname "$0")
out=${CALIBRATION_OUT:-calibration-scored.jsonl}
reward score "$here/calibration.jsonl" -o "$out" --no-progress "$@"
reward calibrate "$out" --label meta.kind \
  --order "reference>good>unnecessary_commands>vague=missed_error=wrong_diagnosis>hallucinated"
