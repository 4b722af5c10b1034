"""Adapters to other toolkits, each an optional extra: :mod:`msdefense.integrations.art` (the
adversarial-robustness-toolbox, ``pip install msdefense[art]``). Nothing here is imported by
``import msdefense``."""
