"""Expert validation (paper §3.4): blinded annotation sheets for therapists, and their agreement with the
dataset's labels and with each other; expert evaluation of a policy (§4.2): blinded policy-vs-reference and
rating sheets from a win-rate evaluation, scored into expert win rates, judge agreement and ratings."""
