"""msdefense: reproduction package for defenses against model stealing (model extraction) of CNNs."""

__version__ = "0.1.0"
