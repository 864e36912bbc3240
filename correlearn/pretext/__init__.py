"""Held-out pretext metrics of the methods (:mod:`correlearn.pretext.metrics`)."""
