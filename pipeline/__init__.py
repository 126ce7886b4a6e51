"""The ``mcmt`` pipeline, one sub-package per stage (see README "Architecture"):

- ``run``: decode, detect, track, embed, tracklets, stage cache (the per-camera part);
- ``association``: cross-camera matching of tracklets (distances, constraints, clustering, topology);
- ``outputs``: MOTChallenge / AI City files, identities.json, drawing, the HTML report;
- ``evaluation``: tracking metrics (HOTA, CLEAR-MOT, IDF1, cross-camera) and their file layouts;
- ``formats``: reading and writing MOTChallenge and AI City text files;
- ``commands``: the ``mcmt`` subcommands, dispatched by ``cli``.
"""
