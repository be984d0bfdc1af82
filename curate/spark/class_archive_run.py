"""The JVM class archive's training run (:mod:`curate.speedups.class_archive`).

A Spark program, so it sits here beside the session it starts rather than in the speed-up,
which must not import ``curate.spark.session`` (the module it speeds up).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from curate.spark.session import spark_session
from curate.speedups.class_archive import QUIET, discard


def build(path: str) -> None:
    """The training run: Spark jobs like curate's, then the JVM's exit writes the archive.

    Runs in its own interpreter (``python -m curate.spark.class_archive_run PATH``, started by
    ``curate.speedups.class_archive.ensure``) because only a JVM started with
    ``-XX:ArchiveClassesAtExit`` records, and it writes at exit.
    """
    from pyspark import SparkContext

    partial = f"{path}.{os.getpid()}.partial"
    work = tempfile.mkdtemp(prefix="curate-class-archive-")
    try:
        spark = spark_session(
            "curate:class-archive",
            master="local[2]",
            progress=False,
            conf={"spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={partial} {QUIET}"},
        )
        _jobs_like_curates(spark, work)
        gateway = SparkContext._gateway
        proc = gateway.proc
        spark.stop()
        gateway.shutdown()
        proc.stdin.close()  # the gateway JVM exits at end of input, writing the archive on the way
        if proc.wait(timeout=300) != 0 or not os.path.exists(partial):
            raise RuntimeError(f"the JVM exited with {proc.returncode} and {'no' if not os.path.exists(partial) else 'an'} archive")
        os.replace(partial, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        discard(partial)


def _jobs_like_curates(spark, work: str) -> None:
    """The kinds of jobs curate runs (Arrow maps, Parquet, shuffles, windows, joins), so the JVM loads their classes."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    def double_text(batches):
        for batch in batches:
            yield pa.RecordBatch.from_arrays(
                [batch.column("id"), batch.column("key"), pc.binary_join_element_wise(batch.column("text"), batch.column("text"), "")],
                names=["id", "key", "text"],
            )

    rows = spark.sparkContext.parallelize([(i, f"k{i % 7}", "x" * (i % 40)) for i in range(2000)], 2)
    df = spark.createDataFrame(rows, "id long, key string, text string")
    mapped = df.mapInArrow(double_text, df.schema)
    mapped.write.mode("overwrite").parquet(os.path.join(work, "a"))
    back = spark.read.schema(df.schema).parquet(os.path.join(work, "a"))
    back.filter(F.col("text").isNotNull()).count()
    ranked = back.withColumn("rank", F.row_number().over(Window.partitionBy("key").orderBy("id"))).withColumn(
        "first", F.first("id").over(Window.partitionBy("key").orderBy("id"))
    )
    joined = back.join(ranked.select("id", "rank", "first"), "id", "left").unionByName(
        back.withColumn("rank", F.lit(0)).withColumn("first", F.lit(0).cast("long"))
    )
    keyed = joined.withColumn("_shard", F.pmod(F.xxhash64("id"), F.lit(4))).repartition(4, "_shard").sortWithinPartitions("_shard", "id")
    keyed.mapInArrow(lambda it: (b for b in it), keyed.schema).write.mode("overwrite").parquet(os.path.join(work, "b"))
    back.groupBy("key").agg(F.count("*").alias("n"), F.countDistinct("text"), F.sum(F.length("text"))).collect()
    back.select("id", F.posexplode(F.array("id", "id")).alias("band", "bucket")).distinct().localCheckpoint().count()


if __name__ == "__main__":
    build(sys.argv[1])
