"""Mixture recipe YAML: parsed into typed objects and validated before Spark starts.

Every mistake is reported as ``<file>: <key path>: <what was expected>``, e.g.
``demo.yaml: stages[2].min_score: expected a number, got 'high'``. Relative paths in a
recipe are resolved against the current working directory (where ``curate run`` or
``spark-submit`` is started), like every other path a CLI takes.

Stage parameters are the ``Params`` dataclass of each stage class; the registry below maps
the ``stage:`` name in YAML to that class, imported lazily so that a recipe that does not
use PII never imports presidio.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from curate.config import ConfigError, deep_merge, from_dict, show
from curate.sources import READERS, InputAccess, SampleSpec, SourceSpec, source_files, source_reader
from curate.storage import is_remote, protocol_of, redacted_options

__all__ = ["Recipe", "RecipeError", "SampleSpec", "SourceSpec", "load_recipe", "parse_recipe"]

STAGE_REGISTRY: dict[str, str] = {
    "extract": "curate.extract:ExtractStage",
    "langid": "curate.langid:LangIdStage",
    "gopher_quality": "curate.filters.gopher:GopherQualityStage",
    "gopher_repetition": "curate.filters.gopher:GopherRepetitionStage",
    "c4": "curate.filters.c4:C4Stage",
    "fineweb": "curate.filters.fineweb:FineWebStage",
    "url_filter": "curate.filters.url:UrlFilterStage",
    "classify": "curate.classify:ClassifyStage",
    "dedup": "curate.dedup:DedupStage",
    "pii": "curate.pii:PiiStage",
    "decontaminate": "curate.decontaminate:DecontaminateStage",
}


# A recipe's mistakes are configuration errors (curate.config), named for the file they are in.
RecipeError = ConfigError


def stage_class(kind: str) -> type:
    target = STAGE_REGISTRY[kind]
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


# --- the recipe's own sections -------------------------------------------------------------


@dataclass
class StageSpec:
    kind: str
    name: str
    params: Any


@dataclass
class TokenizerSpec:
    path: str = "models/tokenizer/tokenizer.json"
    eos_token: str = "<|endoftext|>"
    batch_size: int = 256


@dataclass
class ShardSpec:
    """Token shards: one Parquet row per document (``tokens: list<int32>``, EOS appended)."""

    num_shards: int = 4
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    row_group_size: int = 1024
    # documents/ and tokens/ split into Hive-style folders by a document column (language=deu_Latn/)
    partition_by: Literal["language"] | None = None

    def to_dict(self) -> dict:
        # partition_by appears only when set, so the hash of a recipe without it is what it was
        # before it existed (runs started then can still be resumed)
        data = dataclasses.asdict(self)
        if data["partition_by"] is None:
            data.pop("partition_by")
        return data


@dataclass
class MixtureSpec:
    """Sample documents per source so that tokens per source follow ``weights``."""

    weights: dict[str, float] = field(default_factory=dict)
    total_tokens: int | None = None
    upsample: bool = True


@dataclass
class SparkSpec:
    master: str = "local[*]"
    partitions: int | None = None  # input partitions; default: one per input file
    driver_memory: str = "2g"
    progress: bool = True
    ui: bool = False
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class ReadingSpec:
    """How input files are read from object stores (curate/ranged_reader.py); local files ignore it
    except ``on_error``. None of it changes what a successful run writes."""

    on_error: Literal["skip", "fail"] = "skip"  # a file that still fails after its retries
    max_attempts: int = 12  # per request
    retry_budget_s: float = 600.0  # seconds of back-off one file may spend
    request_timeout_s: float = 60.0
    backoff_base_s: float = 0.5  # first back-off; doubles per retry, with full jitter
    backoff_max_s: float = 60.0
    block_size_mb: float = 8.0  # bytes per ranged request; at most two blocks in memory per file
    max_concurrent_requests: int | None = None  # per machine, across its Python workers
    forbidden_attempts: int = 4  # a CDN answers 403 when it throttles, a store when credentials are wrong
    prefetch: bool = True  # fetch the next block while the current one is parsed

    def policy_options(self) -> dict:
        """Keyword arguments of ``curate.ranged_reader.ReadPolicy``."""
        return {
            "block_size": int(self.block_size_mb * 2**20),
            "max_attempts": self.max_attempts,
            "retry_budget_s": self.retry_budget_s,
            "request_timeout_s": self.request_timeout_s,
            "backoff_base_s": self.backoff_base_s,
            "backoff_max_s": self.backoff_max_s,
            "max_concurrent_requests": self.max_concurrent_requests,
            "forbidden_attempts": self.forbidden_attempts,
            "prefetch": self.prefetch,
        }


@dataclass
class Recipe:
    name: str
    output: str
    sources: list[SourceSpec]
    stages: list[StageSpec] = field(default_factory=list)
    seed: int = 0
    tokenizer: TokenizerSpec = field(default_factory=TokenizerSpec)
    shards: ShardSpec = field(default_factory=ShardSpec)
    mixture: MixtureSpec | None = None
    spark: SparkSpec = field(default_factory=SparkSpec)
    description: str = ""
    # fsspec options per protocol ({s3: {endpoint_url: ...}}): never in the manifest unredacted, nor in the hash
    storage_options: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    reading: ReadingSpec = field(default_factory=ReadingSpec)
    # intermediate files (stage segments, statistics, staged shards); default OUTPUT/_work for a
    # local output, a local cache folder for an object-store output (docs/cluster.md)
    work_dir: str | None = None
    file: str = ""  # where it was read from (not a YAML key)

    def build_stages(self, run_dir: str | None = None) -> list:
        from curate.stage import StageContext

        ctx = StageContext(
            recipe_dir=os.path.dirname(os.path.abspath(self.file or ".")),
            seed=self.seed,
            run_dir=run_dir,
            storage_options=self.storage_options,
        )
        return [stage_class(s.kind)(s.params, ctx, name=s.name) for s in self.stages]

    def input_files(self, source: SourceSpec) -> list[str]:
        return source_files(source, self.storage_options)

    def input_access(self) -> InputAccess:
        return InputAccess(self.storage_options, self.reading.policy_options(), self.reading.on_error)

    def to_dict(self) -> dict:
        data = {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "output": self.output,
            "sources": [_source_dict(s) for s in self.sources],
            "stages": [{"stage": s.kind, "name": s.name, **_plain(s.params)} for s in self.stages],
            "tokenizer": dataclasses.asdict(self.tokenizer),
            "shards": self.shards.to_dict(),
            "spark": dataclasses.asdict(self.spark),
            "storage_options": redacted_options(self.storage_options),
            "reading": dataclasses.asdict(self.reading),
            "work_dir": self.work_dir,
        }
        if self.mixture is not None:
            data["mixture"] = dataclasses.asdict(self.mixture)
        return data

    def fingerprint(self) -> str:
        """Hash of what determines the output (Spark settings, where files are read from and how,
        and the work folder excluded: they don't change it)."""
        data = self.to_dict()
        for key in ("spark", "description", "storage_options", "reading", "work_dir"):
            data.pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _source_dict(source: SourceSpec) -> dict:
    # Listing keys appear only when used, so the hash of a recipe without them is what it was
    # before they existed (runs started then can still be resumed).
    data = dataclasses.asdict(source)
    for key in ("listing", "base_url", "limit", "sample"):
        if not data[key]:
            data.pop(key)
    return data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --- loading ---------------------------------------------------------------------------------


def load_recipe(path: str, check_files: bool = True, overrides: dict | None = None) -> Recipe:
    """Read, type-check and validate a recipe file. Raises RecipeError."""
    file = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise RecipeError(path, "", "recipe file not found") from None
    except yaml.YAMLError as e:
        raise RecipeError(file, "", f"not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(file, "", f"expected a mapping at the top level, got {show(data)}")
    if overrides:
        data = deep_merge(data, overrides)
    return parse_recipe(data, file=path, check_files=check_files)


def parse_recipe(data: dict, file: str = "<recipe>", check_files: bool = True) -> Recipe:
    shown = os.path.basename(file)
    raw_stages = data.get("stages", [])
    recipe = from_dict(Recipe, data, "", shown, skip=("stages",))
    recipe.file = file
    if not isinstance(raw_stages, list):
        raise RecipeError(shown, "stages", f"expected a list of stages, got {show(raw_stages)}")
    stages: list[StageSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_stages):
        where = f"stages[{i}]"
        if not isinstance(raw, dict) or "stage" not in raw:
            raise RecipeError(shown, where, "expected a mapping with a 'stage' key")
        kind = raw["stage"]
        if kind not in STAGE_REGISTRY:
            raise RecipeError(shown, f"{where}.stage", f"unknown stage {kind!r}; expected one of: {', '.join(STAGE_REGISTRY)}")
        name = raw.get("name", kind)
        if not isinstance(name, str):
            raise RecipeError(shown, f"{where}.name", f"expected a string, got {show(name)}")
        if name in seen:
            raise RecipeError(shown, f"{where}.name", f"stage name {name!r} is used twice; give one a 'name'")
        seen.add(name)
        params_raw = {k: v for k, v in raw.items() if k not in ("stage", "name")}
        cls = stage_class(kind)
        params = _absolute_paths(from_dict(cls.Params, params_raw, where, shown))
        stages.append(StageSpec(kind=kind, name=name, params=params))
    recipe.stages = stages
    _validate(recipe, shown, check_files)
    return recipe


def _is_path_key(name: str) -> bool:
    # ``index``: the dedup stage's cross-run index folder.
    return name in ("path", "paths", "index") or name.endswith(("_path", "_dir", "_files"))


def _absolute_paths(obj: Any) -> Any:
    """Resolve relative file parameters on the driver: executors of a cluster run elsewhere."""
    if isinstance(obj, list):
        return [_absolute_paths(v) for v in obj]
    if not dataclasses.is_dataclass(obj):
        return obj
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if _is_path_key(f.name) and isinstance(value, str):
            setattr(obj, f.name, _absolute(value))
        elif _is_path_key(f.name) and isinstance(value, list) and all(isinstance(v, str) for v in value):
            setattr(obj, f.name, [_absolute(v) for v in value])
        elif dataclasses.is_dataclass(value) or isinstance(value, list):
            setattr(obj, f.name, _absolute_paths(value))
    return obj


def _absolute(path: str) -> str:
    return path if is_remote(path) else os.path.abspath(path)


def _validate(recipe: Recipe, file: str, check_files: bool) -> None:
    _validate_sources(recipe, file, check_files)
    _validate_mixture(recipe, file)
    _validate_storage(recipe, file)
    if recipe.shards.num_shards < 1:
        raise RecipeError(file, "shards.num_shards", "expected a positive integer")
    if recipe.shards.partition_by is not None and recipe.mixture is not None:
        raise RecipeError(
            file, "shards.partition_by", "cannot be combined with mixture (not supported yet): mixed token rows do not carry a language"
        )
    _validate_rehydrate(recipe, file)
    raw_kinds = sorted({s.kind for s in recipe.sources if source_reader(s.kind).yields_records})
    stage_kinds = [s.kind for s in recipe.stages]
    if raw_kinds and (not stage_kinds or stage_kinds[0] != "extract"):
        raise RecipeError(file, "stages", f"a recipe with a {' or '.join(raw_kinds)} source must start with an 'extract' stage")
    if stage_kinds.count("extract") > 1 or ("extract" in stage_kinds and stage_kinds.index("extract") != 0):
        raise RecipeError(file, "stages", "'extract' may appear once, as the first stage")
    if check_files:
        _check_tokenizer_and_stages(recipe, file)


def _validate_sources(recipe: Recipe, file: str, check_files: bool) -> None:
    names = [s.name for s in recipe.sources]
    if not recipe.sources:
        raise RecipeError(file, "sources", "expected at least one source")
    for i, src in enumerate(recipe.sources):
        if src.kind not in READERS:
            raise RecipeError(file, f"sources[{i}].kind", f"unknown source kind {src.kind!r}; expected one of: {', '.join(READERS)}")
        if names.count(src.name) > 1:
            raise RecipeError(file, f"sources[{i}].name", f"source name {src.name!r} is used twice")
        if not src.weight > 0:
            raise RecipeError(file, f"sources[{i}].weight", f"expected a positive number, got {src.weight!r}")
        _validate_where(src, f"sources[{i}]", file)
        if check_files:
            _check_source_files(recipe, src, f"sources[{i}]", file)


def _validate_mixture(recipe: Recipe, file: str) -> None:
    if recipe.mixture is None:
        return
    names = [s.name for s in recipe.sources]
    for key, w in recipe.mixture.weights.items():
        if key not in names:
            raise RecipeError(file, f"mixture.weights.{key}", f"unknown source; expected one of: {', '.join(names)}")
        if not w > 0:
            raise RecipeError(file, f"mixture.weights.{key}", f"expected a positive number, got {w!r}")
    if recipe.mixture.total_tokens is not None and recipe.mixture.total_tokens <= 0:
        raise RecipeError(file, "mixture.total_tokens", "expected a positive integer")


def _check_tokenizer_and_stages(recipe: Recipe, file: str) -> None:
    """The tokenizer file loads and names its end-of-text token; every stage can start (models, word lists...)."""
    if not os.path.isfile(recipe.tokenizer.path):
        raise RecipeError(file, "tokenizer.path", f"file not found: {recipe.tokenizer.path}")
    from curate.tokens import DocumentTokenizer, TokenizerError

    try:
        DocumentTokenizer(recipe.tokenizer.path, recipe.tokenizer.eos_token).check()
    except TokenizerError as e:
        key = "tokenizer.eos_token" if "has no token" in str(e) else "tokenizer.path"
        raise RecipeError(file, key, str(e)) from None
    from curate.stage import StageError

    for i, stage in enumerate(recipe.build_stages()):
        try:
            stage.check()
        except (StageError, FileNotFoundError, ValueError) as e:
            raise RecipeError(file, f"stages[{i}]", str(e)) from None


def _validate_storage(recipe: Recipe, file: str) -> None:
    if protocol_of(recipe.output) in ("http", "https"):
        raise RecipeError(
            file, "output", "an HTTP server cannot be written to; use a local folder or an object-store URL (s3://, gs://, ...)"
        )
    for protocol, options in recipe.storage_options.items():
        if not isinstance(options, dict):
            raise RecipeError(file, f"storage_options.{protocol}", "expected a mapping of fsspec options")


def _validate_where(src: SourceSpec, where: str, file: str) -> None:
    if not src.paths and not src.listing:
        raise RecipeError(file, f"{where}.paths", "expected paths, a listing, or both")
    if src.limit is not None and src.limit < 1:
        raise RecipeError(file, f"{where}.limit", f"expected a positive integer, got {src.limit!r}")
    if src.sample is not None and src.sample.n < 1:
        raise RecipeError(file, f"{where}.sample.n", f"expected a positive integer, got {src.sample.n!r}")
    if (src.limit is not None or src.sample is not None or src.base_url) and not src.listing:
        raise RecipeError(file, where, "base_url, limit and sample apply to a listing; this source has none")


def _check_source_files(recipe: Recipe, src: SourceSpec, where: str, file: str) -> None:
    """The driver lists the files now, so a wrong path or an unreachable store fails before Spark starts."""
    key = f"{where}.listing" if src.listing else f"{where}.paths"
    try:
        files = recipe.input_files(src)
    except (OSError, ValueError, ImportError) as e:  # ImportError: fsspec names the package a protocol needs
        raise RecipeError(file, key, f"cannot list the files: {e}") from None
    if not files:
        folder_glob = source_reader(src.kind).folder_glob
        what = f"no folder with {folder_glob} matches" if folder_glob else "no file matches"
        raise RecipeError(file, key, f"{what} {src.paths or src.listing!r}")


def _validate_rehydrate(recipe: Recipe, file: str) -> None:
    """At most one dedup stage repeats survivors, and not under a mixture (both set ``repeat``)."""
    rehydrating = [i for i, s in enumerate(recipe.stages) if getattr(s.params, "rehydrate", None) is not None]
    if len(rehydrating) > 1:
        first, second = rehydrating[:2]
        raise RecipeError(file, f"stages[{second}].rehydrate", f"only one dedup stage may rehydrate (stages[{first}] already does)")
    if rehydrating and recipe.mixture is not None:
        raise RecipeError(
            file,
            f"stages[{rehydrating[0]}].rehydrate",
            "cannot be combined with mixture (not supported yet): both number repeated token rows with 'repeat', "
            "and the mixture's token budget would count the copies",
        )
