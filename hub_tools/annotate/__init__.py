"""Expert validation (paper §3.4): blinded annotation sheets for therapists, and their agreement with the
dataset's labels and with each other."""
