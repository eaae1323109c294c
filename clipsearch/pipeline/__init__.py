"""The ingest pipeline: decode clips in worker processes, embed them in batches, write them
to a store (``runner``); evaluation embeds the same way."""
