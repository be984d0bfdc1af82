#!/usr/bin/env bash
# Submit a recipe to a Spark cluster, shipping the curate package the way docs/cluster.md
# describes:  pipelines/submit_cluster.sh MASTER_URL RECIPE OUTPUT [extra spark-submit options]
#
#   pipelines/submit_cluster.sh spark://master:7077 pipelines/recipes/fineweb.yaml /mnt/shared/runs/fw \
#       --executor-memory 4g --executor-cores 4
#
# PYSPARK_PYTHON (default: this checkout's .venv) must exist at the same path on every worker,
# and OUTPUT must be a folder that the driver and every executor see at the same path.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 MASTER_URL RECIPE OUTPUT [spark-submit options...]" >&2
  exit 2
fi
master=$1 recipe=$2 output=$3
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYSPARK_PYTHON:-$root/.venv/bin/python}
spark_home=$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
ship=$(mktemp -d)
trap 'rm -rf "$ship"' EXIT
(cd "$root" && zip -qr "$ship/curate.zip" curate -x '*/__pycache__/*')
exec_args=(
  --master "$master"
  --py-files "$ship/curate.zip"
  --conf "spark.pyspark.python=$python"
  --conf "spark.pyspark.driver.python=$python"
  "$@"
  "$root/pipelines/run_recipe.py" "$recipe" --output "$output"
)
"$spark_home/bin/spark-submit" "${exec_args[@]}"
