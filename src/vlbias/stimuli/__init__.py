"""Stimuli: the texts and images that audits encode (word lists, test definitions, image sets)."""
