"""curate/dedup_index.py (with DedupStage): dedup across runs through an index folder.

Three snapshots of real pages with planted overlaps: every removal is explained by a document
that is in the index or kept by the run, results do not depend on input order, a second run on
a held index is refused, and a run killed before its commit leaves the index as it was."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.dedup import DedupParams, DedupStage, MinHashParams
from curate.dedup_index import DedupIndexError, IndexLockedError, IndexSession, committed_parts, index_settings, part_files
from curate.recipe import RecipeError, parse_recipe
from test_dedup import edit, outcome, table


@pytest.fixture(scope="module")
def pages(data_dir) -> list[dict]:
    with (data_dir / "dedup" / "pages.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def snapshots(pages) -> list[list[dict]]:
    """Three crawls. 2 repeats pages of 1 exactly, nearly, and by URL; 3 repeats 1 and 2."""
    one = [{"id": f"s1-{i}", "text": pages[i]["text"], "url": f"https://one.org/{i}", "warc_date": "2024-01-01"} for i in range(6)]
    two = [
        {"id": "s2-exact", "text": pages[0]["text"].upper(), "url": "https://two.org/copy", "warc_date": "2024-02-01"},
        {"id": "s2-near", "text": edit(pages[1]["text"], seed=7, every=200), "url": "https://two.org/near", "warc_date": "2024-02-01"},
        {
            "id": "s2-url",
            "text": "the page at this address today says something else",
            "url": "http://www.one.org/2/?utm_source=x",
            "warc_date": "2024-02-01",
        },
        *({"id": f"s2-{i}", "text": pages[i]["text"], "url": f"https://two.org/{i}", "warc_date": "2024-02-01"} for i in range(6, 9)),
    ]
    three = [
        {"id": "s3-from-1", "text": pages[3]["text"], "url": "https://three.org/a", "warc_date": "2024-03-01"},
        {"id": "s3-from-2", "text": pages[7]["text"], "url": "https://three.org/b", "warc_date": "2024-03-01"},
        {"id": "s3-inner-a", "text": pages[10]["text"], "url": "https://three.org/c", "warc_date": "2024-03-01"},
        {"id": "s3-inner-b", "text": pages[10]["text"], "url": "https://three.org/d", "warc_date": "2024-03-01"},
        {"id": "s3-new", "text": pages[11]["text"], "url": "https://three.org/e", "warc_date": "2024-03-01"},
    ]
    return [one, two, three]


def run(index: Path, rows: list[dict], **params) -> dict[str, tuple]:
    return outcome(DedupStage(DedupParams(index=str(index), **params)).run_local(table(rows)))


def index_rows(index: Path) -> dict[str, list]:
    """Every committed entry, per rule folder, sorted: what the index holds."""
    out: dict[str, list] = {}
    for part in committed_parts(str(index)):
        for folder, _, files in os.walk(part):
            for file in part_files(folder):
                rule = os.path.relpath(folder, part)
                out.setdefault(rule, []).extend(tuple(r.values()) for r in pq.read_table(file).to_pylist())
    return {rule: sorted(rows) for rule, rows in out.items()}


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_each_snapshot_removes_what_earlier_ones_kept_and_says_which(tmp_path, pages):
    one, two, three = snapshots(pages)
    assert all(v == (None, None, None) for v in run(tmp_path, one).values())
    second = run(tmp_path, two)
    assert second == {
        "s2-exact": ("dedup.earlier_exact", "s1-0", 1.0),
        "s2-near": ("dedup.earlier_minhash", "s1-1", 1.0),
        "s2-url": ("dedup.earlier_url", "s1-2", 1.0),
        "s2-6": (None, None, None),
        "s2-7": (None, None, None),
        "s2-8": (None, None, None),
    }
    third = run(tmp_path, three)
    assert third == {
        "s3-from-1": ("dedup.earlier_exact", "s1-3", 1.0),
        "s3-from-2": ("dedup.earlier_exact", "s2-7", 2.0),  # rejected_value: the earlier snapshot
        "s3-inner-a": (None, None, None),
        "s3-inner-b": ("dedup.exact", "s3-inner-a", 2.0),  # within the run: as without an index
        "s3-new": (None, None, None),
    }
    # Every removal is explained by a document the index holds (or the run kept).
    held = {row[1] for row in index_rows(tmp_path)["exact"]}
    assert held == {f"s1-{i}" for i in range(6)} | {"s2-6", "s2-7", "s2-8", "s3-inner-a", "s3-new"}
    for result in (second, third):
        assert all(dup in held for by, dup, _ in result.values() if by)
    assert [os.path.basename(p) for p in committed_parts(str(tmp_path))] == ["s000001", "s000002", "s000003"]


def test_index_is_partitioned_by_band_and_readable_by_duckdb(tmp_path, pages):
    duckdb = pytest.importorskip("duckdb")
    one, _, _ = snapshots(pages)
    run(tmp_path, one)
    bands, _ = MinHashParams().band_layout()
    glob = str(tmp_path / "parts" / "*" / "minhash" / "*" / "*.parquet")
    counts = duckdb.sql(
        f"SELECT band, count(*) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY band ORDER BY band"
    ).fetchall()
    assert counts == [(band, 6) for band in range(bands)]
    ids = duckdb.sql(f"SELECT id FROM read_parquet('{tmp_path}/parts/*/exact/*.parquet') ORDER BY id").fetchall()
    assert [i for (i,) in ids] == [f"s1-{i}" for i in range(6)]


def test_results_and_index_do_not_depend_on_input_order(tmp_path, pages):
    results, contents = [], []
    for attempt in range(2):
        index = tmp_path / f"index{attempt}"
        rng = random.Random(attempt)
        for rows in snapshots(pages):
            rows = list(rows)
            rng.shuffle(rows)
            results.append(run(index, rows))
        contents.append(index_rows(index))
    assert results[:3] == results[3:]
    assert contents[0] == contents[1]


def test_keep_newest_keeps_the_new_copy_and_lists_what_it_supersedes(tmp_path, pages):
    one, two, three = snapshots(pages)
    run(tmp_path, one, index_keep="newest")
    stage = DedupStage(DedupParams(index=str(tmp_path), index_keep="newest"))
    second = outcome(stage.run_local(table(two)))
    assert all(v == (None, None, None) for v in second.values())
    assert sorted(stage.last_superseded) == [
        ("s1-0", 1, "s2-exact", "exact"),
        ("s1-1", 1, "s2-near", "minhash"),
        ("s1-2", 1, "s2-url", "url"),
    ]
    # A third copy supersedes the newest earlier one (snapshot 2), not the original.
    stage = DedupStage(DedupParams(index=str(tmp_path), index_keep="newest"))
    stage.run_local(table([{"id": "s3-again", "text": pages[0]["text"], "url": "https://three.org/x"}]))
    assert stage.last_superseded == [("s2-exact", 2, "s3-again", "exact")]
    superseded = pq.read_table(tmp_path / "parts" / "s000003" / "superseded").to_pylist()
    assert superseded == [{"id": "s2-exact", "snapshot": 2, "superseded_by": "s3-again", "rule": "exact"}]


def test_a_second_run_on_a_held_index_is_refused_naming_the_holder(tmp_path, pages):
    one, two, _ = snapshots(pages)
    holder = DedupStage(DedupParams(index=str(tmp_path)))
    holder.open_index("curate run runs/first")
    try:
        with pytest.raises(IndexLockedError, match=rf"in use by curate run runs/first \(pid {os.getpid()} on "):
            run(tmp_path, two)
        holder.run_local(table(one))  # the holder itself goes on
        holder.commit_index()
    finally:
        holder.close_index()
    assert not (tmp_path / "LOCK").exists()
    assert run(tmp_path, two)["s2-exact"] == ("dedup.earlier_exact", "s1-0", 1.0)


def test_a_failed_run_publishes_nothing_and_releases_the_index(tmp_path, pages):
    one, _, _ = snapshots(pages)
    run(tmp_path, one)
    before = tree_digest(tmp_path)
    with pytest.raises(ValueError, match="occurs more than once"):
        run(tmp_path, [one[0], one[0]])
    assert tree_digest(tmp_path) == before


def test_a_killed_run_leaves_the_index_as_it_was_and_the_next_run_proceeds(tmp_path, pages):
    one, two, _ = snapshots(pages)
    run(tmp_path, one)
    before = index_rows(tmp_path)
    rows_file = tmp_path.parent / "rows.json"
    rows_file.write_text(json.dumps(two))
    # A run that stages its part, then dies (SIGKILL: no handler runs) before its commit.
    code = textwrap.dedent(
        f"""
        import json, os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_dedup import table
        from curate.dedup import DedupParams, DedupStage
        stage = DedupStage(DedupParams(index={str(tmp_path)!r}))
        stage.open_index("a run that will be killed")
        stage._run_local(table(json.load(open({str(rows_file)!r}))))
        print(stage.index_session.staging, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    staged = Path(result.stdout.strip())
    assert (staged / "part.json").exists() and (tmp_path / "LOCK").exists()
    assert index_rows(tmp_path) == before  # nothing of the killed run is visible
    # The next run finds the dead run's lock stale, drops its staging and commits as snapshot 2.
    assert run(tmp_path, two)["s2-exact"] == ("dedup.earlier_exact", "s1-0", 1.0)
    assert not staged.exists() and not (tmp_path / "LOCK").exists()
    assert [os.path.basename(p) for p in committed_parts(str(tmp_path))] == ["s000001", "s000002"]


def test_a_lock_from_another_host_is_never_broken(tmp_path):
    (tmp_path / "LOCK").write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "2026-01-01T00:00:00Z", "holder": "curate run x"}))
    session = IndexSession(str(tmp_path), index_settings(DedupParams()), "me")
    with pytest.raises(IndexLockedError, match=r"curate run x \(pid 1 on elsewhere.*delete .*LOCK"):
        session.open()


def test_a_run_with_other_minhash_settings_is_refused_naming_the_key(tmp_path, pages):
    one, two, _ = snapshots(pages)
    run(tmp_path, one)
    with pytest.raises(DedupIndexError, match=r"dedup\.minhash\.num_perm: the index has 112, this run asks for 64"):
        run(tmp_path, two, minhash=MinHashParams(num_perm=64))
    with pytest.raises(DedupIndexError, match=r"dedup\.index_keep: the index has 'oldest', this run asks for 'newest'"):
        run(tmp_path, two, index_keep="newest")
    assert not (tmp_path / "LOCK").exists()


def recipe_with(dedup: dict) -> dict:
    return {
        "name": "t",
        "output": "runs/t",
        "sources": [{"name": "s", "kind": "jsonl", "paths": ["x.jsonl"]}],
        "stages": [{"stage": "dedup", **dedup}],
        "tokenizer": {"path": "t.json"},
    }


def test_recipe_keys_are_checked_and_the_index_path_made_absolute(tmp_path):
    recipe = parse_recipe(recipe_with({"index": "dedup-index", "index_keep": "newest"}), check_files=False)
    assert recipe.stages[0].params.index == os.path.abspath("dedup-index")
    with pytest.raises(RecipeError, match=r"stages\[0\]\.index_keep: expected one of"):
        parse_recipe(recipe_with({"index": "x", "index_keep": "latest"}), check_files=False)
    with pytest.raises(RecipeError, match=r"stages\[0\]: dedup\.index: expected a folder path"):
        parse_recipe(recipe_with({"index": " "}), check_files=False)


# --- the Spark job's path --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("index_keep", ["oldest", "newest"])
def test_spark_gives_run_locals_decisions_and_index_for_both_plans(spark, tmp_path, pages, index_keep):
    pytest.importorskip("pyspark")
    from test_spark_dedup import PLANS, run_spark

    one, two, three = snapshots(pages)
    local = tmp_path / "local"
    expected = [run(local, rows, index_keep=index_keep) for rows in (one, two, three)]
    for plan, live_docs in PLANS.items():
        index = tmp_path / plan.replace(" ", "-")
        got = []
        for rows in (one, two, three):
            stage = DedupStage(DedupParams(index=str(index), index_keep=index_keep))
            stage.open_index(f"spark test {plan}")
            try:
                got.append(run_spark(spark, table(rows), stage, partitions=3, live_docs=live_docs))
                stage.commit_index()
            finally:
                stage.close_index()
        assert got == expected, plan
        assert index_rows(index) == index_rows(local), plan


def test_an_index_in_an_object_store_decides_as_a_local_one(tmp_path, pages, monkeypatch):
    """The same three snapshots through an index on moto's S3 server: the same decisions, the same
    committed rows, a held index refused, and a part whose commit died (no part.json) never read."""
    from curate.stage import StageContext
    from servers import moto_server, s3_client, s3_storage_options

    monkeypatch.setenv("CURATE_WORK_DIR", str(tmp_path / "cache"))
    local = [run(tmp_path / "local", rows) for rows in snapshots(pages)]
    with moto_server() as server:
        options = {"s3": s3_storage_options(server)}
        s3_client(server, "index")
        context = StageContext(storage_options=options)

        def remote_run(rows: list[dict]) -> dict:
            return outcome(DedupStage(DedupParams(index="s3://index/dedup"), context).run_local(table(rows)))

        one, two, three = snapshots(pages)
        assert remote_run(one) == local[0]
        holder = DedupStage(DedupParams(index="s3://index/dedup"), context)
        holder.open_index("curate run elsewhere")
        try:
            with pytest.raises(IndexLockedError, match=r"dedup index s3://index/dedup is in use by curate run elsewhere \(pid "):
                remote_run(two)
        finally:
            holder.close_index()
        from curate.storage import filesystem

        fs = filesystem("s3://index/dedup", options)
        fs.pipe_file("s3://index/dedup/parts/s000002/exact/part-0.parquet", b"a commit that died before its part.json")
        assert remote_run(two) == local[1]
        assert remote_run(three) == local[2]
        mirror = IndexSession("s3://index/dedup", {}, "reader", options).path
        assert index_rows(Path(mirror)) == index_rows(tmp_path / "local")
        fs.invalidate_cache()
        assert sorted(p.rsplit("/", 1)[1] for p in fs.ls("s3://index/dedup/parts")) == ["s000001", "s000002", "s000003"]
