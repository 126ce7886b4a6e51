"""What a run writes: MOTChallenge and AI City files, identities.json, annotated videos, the HTML
report, and the ReID evaluation pictures (`write.associate_and_write` drives it)."""
