"""Rollout: canary, blue-green and shadow releases of the packaged service, and their analysis.

Talks to the service only over HTTP and through the model store; imports no training code.
"""
