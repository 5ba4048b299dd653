"""exprgan: joint expression synthesis and representation learning for facial expression recognition.

An implementation of Zhang, Zhang and Xu, "Joint Expression Synthesis and Representation
Learning for Facial Expression Recognition", IEEE TCSVT 2021. Networks live in
:mod:`exprgan.models`, losses in :mod:`exprgan.losses`, data in :mod:`exprgan.datamodules`.
"""

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: importing exprgan stays light, exprgan.JointExprGAN works
    if name == "JointExprGAN":
        from exprgan.joint import JointExprGAN

        return JointExprGAN
    raise AttributeError(f"module 'exprgan' has no attribute {name!r}")
