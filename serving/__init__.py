"""The online side: the BentoML service, its packaging, and (later) the rollout.

Depends on the exported artifact, never on training code: no torch import anywhere in here.
"""
