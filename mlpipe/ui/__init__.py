"""``mlpipe ui``: a local web dashboard over the ML Metadata store.

It shows what ran, what is running now, why each node ran again or was reused, what every
artifact holds, where a model came from and which one is pushed. Pages are rendered on the server
from the same queries and views as ``mlpipe show``/``lineage``; the store is opened read-only.
Nothing here is imported by ``import mlpipe``.
"""
