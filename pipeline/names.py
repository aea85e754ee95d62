"""Names a reader sees: the reference variants as the homework calls them, with the code name
kept beside them (tables, legends and captions use `display`; files and flags keep the code name).

Kept apart from pipeline/model.py on purpose: model.py is hashed into every training key, and a
change of wording must not retrain anything.
"""
from __future__ import annotations

# code name -> (short label, long label): "Model 1" / "Model 2" are CSCE-421 4 Part 4's names.
DISPLAY = {
    "lenet_bn_dropout": ("Model 1: BN + dropout", "Model 1: normalized inputs, batch norm and dropout (p = 0.5)"),
    "lenet_plain": ("Model 2: plain", "Model 2: rescaled inputs, no batch norm, no dropout"),
    "own_cnn": ("Our own CNN", "Our own CNN (CS182 5(d)): whitening layer and three conv groups"),
}
def display(variant: str, long: bool = False) -> str:
    """'lenet_bn_dropout' -> 'Model 1: BN + dropout'; an unknown name is returned as it is."""
    names = DISPLAY.get(variant)
    return variant if names is None else names[1 if long else 0]
