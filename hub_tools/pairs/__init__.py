"""Stage 4, preference pairs: the privacy scrub, the train/test split by speech and the pairing rule."""
