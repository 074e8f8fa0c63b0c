"""Evaluation of generators: features, KID, the attribute classifier and the metrics the
comparison scores with."""
