"""``rnnkit serve``: an HTTP API (FastAPI) and a browser playground over trained runs.

Needs the ``serve`` extra (``pip install 'rnnkit[serve]'``): fastapi, uvicorn, pydantic. ``create_app`` and
``load_models`` live in ``rnnkit.serve.app``; imported lazily so ``rnnkit --help`` stays fast.
"""
