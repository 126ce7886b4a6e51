"""The run folder of ``mcmt run``: its layout (``layout.py``, every file name), the stage cache and its
manifests (``cache.py``, ``manifest.py``), ``run.json`` (``runfile.py``), the generations of the
association's outputs (``generation.py``) and the writer's lock (``lock.py``)."""
