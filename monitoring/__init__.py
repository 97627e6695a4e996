"""Monitoring: data, prediction and concept drift of live traffic against the training data."""
