"""Cross-camera association: tracklets of all cameras -> one global id per tracklet
(`associate.associate`): appearance and attribute distances, constraints, thresholds calibrated on the
run (`calibration`), linking of consecutive tracklets (`linking`), clustering, topology."""
