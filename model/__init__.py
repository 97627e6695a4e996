"""The offline side: one module per DVC stage, plus the network, params and data contract."""
