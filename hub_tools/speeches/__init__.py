"""Stage 1, client speeches: source loaders, cleaning, topic labels and the stage runner."""
