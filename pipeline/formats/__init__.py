"""Text formats of the field: MOTChallenge rows (`mot`) and AI City multi-camera rows (`aicity`)."""
