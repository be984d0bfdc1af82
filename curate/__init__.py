"""curate: Common Crawl WARC files to tokenized pretraining shards, and ablations that compare mixes."""

__version__ = "0.1.0"
