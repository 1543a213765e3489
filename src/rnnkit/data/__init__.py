"""Reading corpora safely and turning them into batches."""
