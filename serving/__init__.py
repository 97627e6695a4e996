"""The online side, and exactly what the Bento contains: the BentoML service and its pieces.

Imports onnxruntime, numpy and the torch-free shared modules of model/ (params, contract, inputs,
inference, atomic), never torch, training, rollout, batch, monitoring or reporting code: the
import contracts in pyproject.toml ([tool.importlinter], `make lint-imports`) enforce it, and
tests/unit/test_stage_dependencies.py keeps bentofile.yaml's include list equal to what
serving/service.py imports.
"""
