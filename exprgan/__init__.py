"""exprgan: joint expression synthesis and representation learning for facial expression recognition.

An implementation of Zhang, Zhang and Xu, "Joint Expression Synthesis and Representation
Learning for Facial Expression Recognition", IEEE TCSVT 2021. Networks live in
:mod:`exprgan.models`, losses in :mod:`exprgan.losses`, data in :mod:`exprgan.datamodules`.
"""

__version__ = "0.1.0"
