"""Evaluation of decisions by the value they create: off-policy estimates from decision logs
(``ope``), uplift metrics (``uplift``) and the Hillstrom real-data policy benchmark."""
